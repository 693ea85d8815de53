"""The reads behind what admins look at: the daily digest's figures and the command line's
screens (`status`, `show`, `list`, `outbox`, `check`). Named queries returning plain values;
what each figure means is decided by their callers (service/digest.py, cli/)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from maildesk.store.db import Store, from_iso, iso
from maildesk.store.sql import OPEN_IN, sql_list

STAFF_ANSWERS = ("staff_answered", "staff_asked")


# --- complaints ---------------------------------------------------------------------------------

def opened_count(store: Store, until: datetime, since: datetime | None = None) -> int:
    """Complaints first contacted by `until` (and after `since` when given)."""
    if since is None:
        return store.scalar("SELECT count(*) FROM complaints WHERE first_contact <= ?", iso(until))
    return store.scalar("SELECT count(*) FROM complaints WHERE first_contact > ? AND first_contact <= ?",
                        iso(since), iso(until))


def resolved_count(store: Store, since: datetime, until: datetime) -> int:
    return store.scalar("SELECT count(DISTINCT complaint_id) FROM events WHERE kind = 'resolved' "
                        "AND at > ? AND at <= ?", iso(since), iso(until))


def open_by_level(store: Store) -> dict[int, int]:
    return dict(tuple(r) for r in store.all(f"SELECT level, count(*) FROM complaints WHERE status IN {OPEN_IN} "
                                            "GROUP BY level"))


def open_oldest_first(store: Store, limit: int) -> list[dict]:
    """Open complaints (ref, subject, level, first_contact as a time), oldest first contact first."""
    return [{"ref": r["ref"], "subject": r["subject"], "level": r["level"],
             "first_contact": from_iso(r["first_contact"])}
            for r in store.all(f"SELECT ref, subject, level, first_contact FROM complaints WHERE status IN {OPEN_IN} "
                               "ORDER BY first_contact LIMIT ?", limit)]


def complaints(store: Store, *, level=None, status=None, seller=None, customer_key=None, open_only=False,
               first_contact_by: datetime | None = None, limit: int | None = None, category=None) -> list[dict]:
    """Complaint rows, newest first contact first, filtered by what is given."""
    where, params = [], []
    for column, value in (("level", level), ("status", status), ("seller_id", seller), ("customer_key", customer_key),
                          ("category", category)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if open_only:
        where.append(f"status IN {OPEN_IN}")
    if first_contact_by is not None:
        where.append("first_contact <= ?")
        params.append(iso(first_contact_by))
    sql = "SELECT * FROM complaints" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY first_contact DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [dict(r) for r in store.all(sql, *params)]


def ratings_between(store: Store, since: datetime, until: datetime) -> list[dict]:
    """Ratings given in the window (ref, subject, rating, rated_at as a time), oldest first."""
    return [{"ref": r["ref"], "subject": r["subject"], "rating": r["rating"], "rated_at": from_iso(r["rated_at"])}
            for r in store.all("SELECT ref, subject, rating, rated_at FROM complaints "
                               "WHERE rating IS NOT NULL AND rated_at > ? AND rated_at <= ? ORDER BY rated_at",
                               iso(since), iso(until))]


def average_rating(store: Store, since: datetime, until: datetime) -> tuple[float | None, int]:
    """(mean rating, how many) over the ratings given in the window."""
    row = store.one("SELECT avg(rating) AS avg, count(*) AS n FROM complaints "
                    "WHERE rating IS NOT NULL AND rated_at > ? AND rated_at <= ?", iso(since), iso(until))
    return row["avg"], row["n"]


# --- how long things took -------------------------------------------------------------------------

def _median(store: Store, pairs: str, *params) -> dict:
    """Median of b - a in seconds over the rows of `pairs` (a SELECT of two stored times, a and b),
    worked out in SQL: the number of rows, then the one or two in the middle. Stored times are whole
    seconds (store.iso), so the differences are exact."""
    n = store.scalar(f"SELECT count(*) FROM ({pairs})", *params)
    if not n:
        return {"seconds": None, "n": 0}
    middle = store.all(f"SELECT CAST(round((julianday(b) - julianday(a)) * 86400) AS INTEGER) AS s FROM ({pairs}) "
                       "ORDER BY s LIMIT ? OFFSET ?", *params, 2 - n % 2, (n - 1) // 2)
    return {"seconds": sum(float(r["s"]) for r in middle) / len(middle), "n": n}  # as statistics.median


def median_to_ack(store: Store, since: datetime, until: datetime) -> dict:
    """{seconds, n}: first contact to acknowledgement, over acknowledgements in the window."""
    return _median(store, "SELECT first_contact AS a, acked_at AS b FROM complaints "
                          "WHERE acked_at > ? AND acked_at <= ?", iso(since), iso(until))


def median_to_first_answer(store: Store, since: datetime, until: datetime) -> dict:
    """{seconds, n}: first contact to the first staff answer, for complaints whose first staff
    answer falls in the window (one there and none before)."""
    kinds = sql_list(STAFF_ANSWERS)
    return _median(store, "SELECT c.first_contact AS a, min(e.at) AS b FROM events e "
                          "JOIN complaints c ON c.id = e.complaint_id "
                          f"WHERE e.kind IN {kinds} AND e.at > ? AND e.at <= ? AND NOT EXISTS ("
                          "SELECT 1 FROM events p WHERE p.complaint_id = e.complaint_id AND p.at <= ? "
                          f"AND p.kind IN {kinds}) GROUP BY e.complaint_id", iso(since), iso(until), iso(since))


def median_to_resolution(store: Store, since: datetime, until: datetime) -> dict:
    """{seconds, n}: first contact to each resolution in the window."""
    return _median(store, "SELECT c.first_contact AS a, e.at AS b FROM events e JOIN complaints c "
                          "ON c.id = e.complaint_id WHERE e.kind = 'resolved' AND e.at > ? AND e.at <= ?",
                   iso(since), iso(until))


# --- the audit trail ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Logged:
    """One audit event, with the reference and subject of its complaint (None for none)."""
    at: datetime
    kind: str
    actor: str
    detail: dict
    ref: str | None
    subject: str | None


def events_between(store: Store, kinds: tuple[str, ...], since: datetime, until: datetime,
                   limit: int | None = None) -> list[Logged]:
    """Events of `kinds` in the window, oldest first."""
    rows = store.all("SELECT e.at, e.kind, e.actor, e.detail, c.ref, c.subject FROM events e "
                     "LEFT JOIN complaints c ON c.id = e.complaint_id "
                     f"WHERE e.kind IN {sql_list(kinds)} AND e.at > ? AND e.at <= ? ORDER BY e.at, e.id"
                     + (" LIMIT ?" if limit is not None else ""),
                     iso(since), iso(until), *([limit] if limit is not None else []))
    return [Logged(from_iso(r["at"]), r["kind"], r["actor"], json.loads(r["detail"] or "{}"), r["ref"], r["subject"])
            for r in rows]


def event_count(store: Store, kind: str, since: datetime, until: datetime) -> int:
    return store.scalar("SELECT count(*) FROM events WHERE kind = ? AND at > ? AND at <= ?", kind, iso(since), iso(until))


# --- sellers --------------------------------------------------------------------------------------

def flagged_sellers(store: Store, limit: int) -> list[dict] | None:
    """Sellers flagged and awaiting an admin decision (id, shop_name, status_reason, status_at as a
    time, strikes since last cleared), longest waiting first; None when the database has no sellers
    table (strikes None without the strikes table)."""
    if not store.has_table("sellers"):
        return None
    strikes = ("(SELECT count(*) FROM seller_strikes k WHERE k.seller_id = s.id "
               "AND k.at > COALESCE(s.strikes_cleared_at, ''))" if store.has_table("seller_strikes") else "NULL")
    rows = store.all(f"SELECT s.id, s.shop_name, s.status_reason, s.status_at, {strikes} AS strikes "
                     "FROM sellers s WHERE s.status = 'flagged' ORDER BY s.status_at, s.id LIMIT ?", limit)
    return [{**dict(r), "status_at": from_iso(r["status_at"])} for r in rows]


# --- the outbox -----------------------------------------------------------------------------------

def outbox_counts(store: Store) -> dict[str, int]:
    """Mail queued (of which retrying: tried before) and failed for good."""
    row = store.one("SELECT count(*) FILTER (WHERE status = 'queued') AS queued, "
                    "count(*) FILTER (WHERE status = 'queued' AND attempts > 0) AS retrying, "
                    "count(*) FILTER (WHERE status = 'failed') AS failed FROM outbox")
    return {"queued": row["queued"], "retrying": row["retrying"], "failed": row["failed"]}


_OUTBOX_STATES = {"failed": "o.status = 'failed'", "retrying": "o.status = 'queued' AND o.attempts > 0",
                  "waiting or failed": "o.status IN ('queued', 'failed')",
                  "failed or cancelled": "o.status IN ('failed', 'cancelled')"}


def outbox_rows(store: Store, which: str, *, newest_first: bool = False, limit: int | None = None) -> list[dict]:
    """Outbox rows in state `which` (a key of _OUTBOX_STATES) with their complaint's ref and the
    recipients decoded (`to`)."""
    sql = ("SELECT o.id, o.status, o.attempts, o.kind, o.audience, o.rcpt, o.subject, o.created_at, "
           "o.next_attempt_at, o.last_error, o.cancelled_at, o.cancelled_by, o.cancel_reason, c.ref "
           f"FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id WHERE {_OUTBOX_STATES[which]} "
           f"ORDER BY o.id{' DESC' if newest_first else ''}" + (" LIMIT ?" if limit is not None else ""))
    rows = []
    for r in store.all(sql, *([limit] if limit is not None else [])):
        row = dict(r)
        row["to"] = json.loads(row.pop("rcpt"))
        rows.append(row)
    return rows


def sent_for(store: Store, complaint_id: int) -> list[dict]:
    """A complaint's outbox rows (kind, audience, status, sent_at, to), in queueing order."""
    return [{"kind": r["kind"], "audience": r["audience"], "status": r["status"], "sent_at": r["sent_at"],
             "to": json.loads(r["rcpt"])}
            for r in store.all("SELECT kind, audience, status, sent_at, rcpt FROM outbox "
                               "WHERE complaint_id = ? ORDER BY id", complaint_id)]


# --- quarantine, state, messages --------------------------------------------------------------------

def held(store: Store, limit: int) -> list[dict]:
    """Quarantined messages still held, newest first (`at` as a time)."""
    return [{**dict(r), "at": from_iso(r["at"])}
            for r in store.all("SELECT * FROM quarantine WHERE status = 'held' ORDER BY at DESC LIMIT ?", limit)]


def held_count(store: Store) -> int:
    return store.scalar("SELECT count(*) FROM quarantine WHERE status = 'held'")


def quarantined_since(store: Store, since: datetime) -> int:
    return store.scalar("SELECT count(*) FROM quarantine WHERE at > ?", iso(since))


def states_like(store: Store, prefix: str) -> list[str]:
    """The values of every state key that starts with `prefix`."""
    return [r["value"] for r in store.all("SELECT value FROM state WHERE key LIKE ? ESCAPE '\\'",
                                          prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")]


def last_mail_from(store: Store, senders) -> bytes | None:
    """The raw bytes of the newest mail received from one of `senders` (lower-case addresses)."""
    senders = list(senders)
    if not senders:
        return None
    marks = ",".join("?" * len(senders))
    row = store.one(f"SELECT raw FROM messages WHERE direction = 'in' AND lower(from_addr) IN ({marks}) "
                    "ORDER BY at DESC LIMIT 1", *senders)
    return row["raw"] if row else None
