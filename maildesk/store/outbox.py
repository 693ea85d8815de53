"""The outbox table: every query the SMTP adapter needs, by name. Rows come out as `OutboxRow`.

Leases (`lease_until`, `lease_owner`) keep a CLI flush beside the daemon from sending a row
twice; `in_flight_at` marks a row handed to the server and not yet marked (see
adapters/outbox.py for the crash window it bounds)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.core.sending import FIRST, FIRST_KINDS, LAST, OTHER
from maildesk.store.db import Store, iso

# core.sending.tier as SQL, for ORDER BY (tests/integration/test_sending_limits.py checks they agree)
TIER_SQL = (f"(CASE WHEN audience = 'customer' AND kind IN ({', '.join(repr(k) for k in FIRST_KINDS)}) "
            f"THEN {FIRST} WHEN routine != 0 OR audience = 'admin' THEN {LAST} ELSE {OTHER} END)")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    message_id: str
    complaint_id: int | None
    ref: str | None  # the complaint's reference, for the log
    kind: str
    mail_from: str
    rcpt: str  # JSON list of addresses
    raw: bytes | str  # a row written by hand may hold TEXT
    attempts: int
    unexpected: int
    in_flight_at: str | None
    tier: int
    recipients: int


class OutboxRows:
    def __init__(self, store: Store):
        self.store = store

    # --- what waits ------------------------------------------------------------------
    def due(self, now: datetime, limit: int) -> list[OutboxRow]:
        """Queued rows due now and not leased, first tier first, then oldest first."""
        rows = self.store.all(
            "SELECT id, message_id, complaint_id, (SELECT ref FROM complaints c WHERE c.id = outbox.complaint_id) "
            "AS ref, kind, mail_from, rcpt, raw, attempts, unexpected, in_flight_at, "
            f"{TIER_SQL} AS tier, json_array_length(rcpt) AS recipients "
            "FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY tier, id LIMIT ?", iso(now), iso(now), limit)
        return [OutboxRow(*r) for r in rows]

    def waiting(self, now: datetime) -> list[tuple[int, int]]:
        """(tier, recipients) of every queued row due now, in sending order: for `sending_status`."""
        return [tuple(r) for r in self.store.all(
            f"SELECT {TIER_SQL} AS tier, json_array_length(rcpt) FROM outbox "
            "WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY tier, id", iso(now))]

    def waiting_count(self, now: datetime) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?",
                                 iso(now))

    def depth(self) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued'")

    def recipients_since(self, since: datetime) -> int:
        """Recipients of the mail we sent since `since`, as Gmail counts them."""
        return self.store.scalar("SELECT coalesce(sum(json_array_length(rcpt)), 0) FROM outbox WHERE sent_at >= ?",
                                 iso(since))

    def sent_elsewhere_since(self, since: datetime) -> int:
        """Recipients of what staff sent from the account itself (seen in its Sent folder)."""
        return self.store.scalar("SELECT coalesce(sum(recipients), 0) FROM sent_elsewhere WHERE sent_at >= ?",
                                 iso(since))

    def is_ours(self, message_id: str) -> bool:
        return self.store.one("SELECT 1 FROM outbox WHERE message_id = ?", message_id) is not None

    def ref_of(self, complaint_id: int) -> str | None:
        return self.store.scalar("SELECT ref FROM complaints WHERE id = ?", complaint_id)

    # --- leases (call inside a transaction) --------------------------------------------
    def claim(self, row_id: int, owner: int, until: datetime, now: datetime) -> bool:
        """Lease a queued row to `owner` unless another live lease holds it."""
        cur = self.store.conn.execute(
            "UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE id = ? AND status = 'queued' "
            "AND (lease_until IS NULL OR lease_until < ?)", (iso(until), owner, row_id, iso(now)))
        return cur.rowcount == 1

    def release(self, row_ids: list[int], owner: int) -> None:
        # one statement for every batch: a statement text with the ids in it would be prepared
        # anew each time and kept in sqlite3's statement cache (the process grew ~0.3 MB per 1,000 messages)
        self.store.conn.executemany(
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ? AND lease_owner = ?",
            [(row_id, owner) for row_id in row_ids])

    def lease_owners(self) -> list[int]:
        return [r[0] for r in self.store.all("SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")]

    def release_owners(self, owners: list[int]) -> int:
        cur = self.store.conn.executemany(
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ?",
            [(owner,) for owner in owners])
        return cur.rowcount

    # --- the outcome of a try (call inside a transaction) ---------------------------------
    def begin(self, row_id: int, now: datetime) -> None:
        self.store.conn.execute("UPDATE outbox SET in_flight_at = ? WHERE id = ?", (iso(now), row_id))

    def mark_sent(self, row: OutboxRow, status: str, now: datetime, note: str | None) -> None:
        """`status` is "sent", or "dry-run" for trial mail written to a folder."""
        self.store.update("outbox", row.id, {"status": status, "sent_at": iso(now), "in_flight_at": None,
                                             "attempts": row.attempts + 1, "last_error": note})

    def mark_failed(self, row: OutboxRow, unexpected: int, reason: str) -> None:
        self.store.update("outbox", row.id, {"status": "failed", "attempts": row.attempts + 1,
                                             "unexpected": unexpected, "in_flight_at": None,
                                             "last_error": reason[:500]})

    def mark_retry(self, row: OutboxRow, unexpected: int, reason: str, next_attempt: datetime,
                   in_flight_at: str | None) -> None:
        self.store.update("outbox", row.id, {"attempts": row.attempts + 1, "unexpected": unexpected,
                                             "last_error": reason[:500], "next_attempt_at": iso(next_attempt),
                                             "in_flight_at": in_flight_at})

    # --- operators ------------------------------------------------------------------------
    def requeue(self, now: datetime, row_id: int | None = None) -> int:
        """Failed or waiting rows (one, or all) due now again; never 'sent' (a duplicate),
        'dry-run' (trial mail must never go out later) nor 'cancelled'."""
        where, params = ("id = ?", [row_id]) if row_id else ("1 = 1", [])
        cur = self.store.conn.execute(
            f"UPDATE outbox SET status = 'queued', next_attempt_at = ?, unexpected = 0 WHERE {where} "
            "AND status IN ('failed', 'queued')", [iso(now), *params])
        return cur.rowcount

    def for_cancel(self, row_id: int):
        """(status, kind, complaint_id, ref, lease_owner, lease_until) of a row, or None."""
        return self.store.one("SELECT status, kind, complaint_id, "
                              "(SELECT ref FROM complaints c WHERE c.id = outbox.complaint_id) AS ref, "
                              "lease_owner, lease_until FROM outbox WHERE id = ?", row_id)

    def mark_cancelled(self, row_id: int, now: datetime, by: str, reason: str) -> None:
        self.store.update("outbox", row_id, {"status": "cancelled", "cancelled_at": iso(now),
                                             "cancelled_by": by, "cancel_reason": reason,
                                             "lease_until": None, "lease_owner": None})


def clear_state(store: Store, key: str) -> None:
    """A key of the state table gone (call inside a transaction)."""
    store.conn.execute("DELETE FROM state WHERE key = ?", (key,))
