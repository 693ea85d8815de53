"""The persistent outbox: mail is written with the state change that caused
it, then sent here over reused SMTP connections (one; up to `[smtp]
connections` side by side when a batch is big: a backlog).

Each attempt ends as sent, a temporary failure (4xx, connection trouble:
retried with back-off, never dropped) or a permanent failure (5xx:
recorded on the complaint for staff to see). Each row is its own bulkhead:
whatever goes wrong with one mail (an address the SMTP library refuses, an
internationalized address the server cannot take, an error nobody foresaw)
ends as that row's outcome, and the rest of the batch goes on. An error
nobody foresaw is retried with back-off MAX_UNEXPECTED_ATTEMPTS times, then
the row fails (`send_failed` on the complaint, listed in the digest).

adapters/smtp.py turns each send into an outcome value (Sent,
TempFail, PermFail, core/sending.py); `_settle` is the one place that stores
it. Which rows may go under the daily limit is core/sending.py's choice; the
SQL is store/outbox.py's.

A row is marked sent right after the server accepts it; the only window for
a duplicate is a crash between those two steps, and then the copy carries
the same Message-ID. The row is marked "in flight" (in_flight_at, committed)
just before it is handed to the server, so after a crash only the rows that
may have been accepted are in doubt; when the server files what it accepts
in the Sent folder (Gmail; `[smtp] saves_to_sent`), such a row is looked up
there by its Message-ID before it is sent again, and found means sent: the
window is closed.

How wide that window is without the Sent folder:
- the process killed (OOM, kill -9, a crash): one mail per connection in
  use, i.e. one, or at most `[smtp] connections` during a backlog (each
  may have a mail accepted and not yet marked). Marks are committed at
  once and survive the process.
- a power cut or a kernel crash: the marks are committed without waiting
  for the disk (synchronous=NORMAL), and every MARK_SYNC_EVERY-th mark, and
  the end of each batch, waits for it; so at most MARK_SYNC_EVERY - 1 more
  mails can go out twice. No mail is ever lost that way: a mark lost
  leaves the row queued, never the other way round.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib

from maildesk.adapters import connect
from maildesk.adapters.smtp import SmtpBatch
from maildesk.core import parties, sending
from maildesk.core.sending import PROBE_EVERY, PermFail, Sent, TempFail
from maildesk.logs import event as log_event
from maildesk.store import complaints
from maildesk.store.db import Store, iso
from maildesk.store.outbox import OutboxRow, OutboxRows, clear_state

LEASE = timedelta(minutes=10)  # longer than any one batch takes to send
BATCH = 500
MARK_SYNC_EVERY = 8  # a mark in 8 waits for the disk (see above)
# Gmail's daily limit reached (`550 5.4.5`): Gmail may refuse everything for up to 24 h. All sending
# pauses (state PAUSE_KEY: since, next probe, the answer) and one mail an hour tries whether it is over.
PAUSE_KEY = "sending_paused"


@dataclass
class FlushResult:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    held: int = 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Outbox:
    """`smtp_client` makes an unconnected aiosmtplib client from `[smtp]` (tests count them)."""

    def __init__(self, cfg, store: Store, password: str | None = None, dry_run_dir: Path | None = None,
                 token_source=None, sent_lookup=None, smtp_client=connect.smtp_client):
        self.cfg = cfg
        self.store = store
        self.rows = OutboxRows(store)
        self.password = password
        self.dry_run_dir = dry_run_dir
        self.token_source = token_source  # OAuth2: callable returning a fresh access token
        self.sent_lookup = sent_lookup  # Message-IDs -> those in the Sent folder; None: not asked
        self.smtp_client = smtp_client
        self._marks = 0  # marks committed since the last one that waited for the disk

    # --- what may go now -----------------------------------------------------
    def sent_last_24h(self, now: datetime) -> int:
        """Recipients in the rolling 24 h, as Gmail counts them: ours, and what staff sent from
        the account itself (seen in the Sent folder in shared-mailbox mode)."""
        return self.rows.recipients_since(now - timedelta(hours=24)) + self.sent_elsewhere_24h(now)

    def sent_elsewhere_24h(self, now: datetime) -> int:
        return self.rows.sent_elsewhere_since(now - timedelta(hours=24))

    def paused(self) -> dict | None:
        """Since when Gmail's daily limit pauses all sending, the next probe and Gmail's answer; None: not paused."""
        return json.loads(self.store.get_state(PAUSE_KEY) or "null")

    def due(self, now: datetime) -> tuple[list[OutboxRow], int]:
        """Rows to send now, first tier first, and how many were held back by the daily limit
        or a pause (core/sending.py decides; after Gmail's 5.4.5 nothing goes until the next
        probe, and then one row)."""
        pause = self.paused()
        if pause and iso(now) < pause["next_probe"]:
            return [], self.rows.waiting_count(now)
        rows = self.rows.due(now, BATCH)
        limit = self.cfg.smtp_daily_limit
        sent = self.sent_last_24h(now) if limit else 0
        go = sending.may_go([(r.tier, r.recipients) for r in rows], limit, sent, self.cfg.smtp.reserve)
        if go < len(rows):
            log_event("sending_limit", severity=30, held=len(rows) - go, limit=limit)
        if pause:  # the probe: one mail tries whether Gmail takes mail again
            go = min(go, 1)
        return rows[:go], len(rows) - go

    def sending_status(self, now: datetime) -> dict:
        """The daily limit as the digest and `status` show it: recipients in the last 24 h (of
        which `sent_elsewhere` staff sent from the account itself), how much due mail the
        limit or a pause holds back right now, and the pause (None, or since/next_probe/error)."""
        limit = self.cfg.smtp_daily_limit
        sent = self.sent_last_24h(now)
        pause = self.paused()
        waiting = self.rows.waiting(now)
        held = len(waiting) if pause else len(waiting) - sending.may_go(waiting, limit, sent, self.cfg.smtp.reserve)
        return {"limit": limit, "reserve": self.cfg.smtp.reserve, "sent_last_24h": sent,
                "sent_elsewhere": self.sent_elsewhere_24h(now), "held": held, "paused": pause}

    def is_ours(self, message_id: str) -> bool:
        """Did maildesk send this? Gmail files what we send through it in Sent too."""
        return self.rows.is_ours(message_id)

    def depth(self) -> int:
        return self.rows.depth()

    # --- sending ---------------------------------------------------------------
    def flush(self, now: datetime, stopping=None) -> FlushResult:
        """Send everything due now, BATCH rows (one connection) at a time. Stops after a
        batch that did not go through whole (server trouble, daily limit) or when
        `stopping()` says so; what is left stays queued."""
        total = FlushResult()
        while True:
            probe = self.paused() is not None
            result = self._flush_batch(now)
            for name in ("sent", "retry", "failed", "held"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            if probe and result.sent:  # Gmail takes mail again: the rest goes now
                self._resume(now)
                continue
            pause = self.paused() if probe and result.retry and not result.sent else None
            if pause and pause["next_probe"] <= iso(now):  # no answer either way: the next probe in an hour
                with self.store.transaction():
                    self._pause(now, pause["error"])
            full = result.sent + result.retry + result.failed == BATCH
            if not (full and result.sent and not result.held) or (stopping and stopping()):
                return total

    def _pause(self, now: datetime, reason: str) -> None:
        """Gmail's daily limit: nothing more goes (no login either) until the next probe. Call inside a transaction."""
        pause = self.paused() or {"since": iso(now)}
        pause.update(next_probe=iso(now + PROBE_EVERY), error=reason[:200])
        self.store.set_state(PAUSE_KEY, json.dumps(pause))
        log_event("sending_paused", severity=40, since=pause["since"], next_probe=pause["next_probe"])

    def _resume(self, now: datetime) -> None:
        pause = self.paused()
        with self.store.transaction():
            clear_state(self.store, PAUSE_KEY)
        log_event("sending_resumed", since=pause and pause["since"])

    def _flush_batch(self, now: datetime) -> FlushResult:
        rows, held = self.due(now)
        rows = self._claim(rows, now)
        result = FlushResult(held=held)
        if not rows:
            return result
        try:
            if self.dry_run_dir is not None:
                self._write_dry_run(rows, now, result)
            else:
                rows = self._settle_in_doubt(rows, now, result)
                if rows:
                    self._send(rows, now, result)
        finally:
            self._marks = 0  # this commit waits for the disk: every mark before it is safe too
            with self.store.transaction():  # rows not reached (broken connection) wait for the next flush
                self.rows.release([r.id for r in rows], os.getpid())
        return result

    def _settle_in_doubt(self, rows: list[OutboxRow], now: datetime, result: FlushResult) -> list[OutboxRow]:
        """Rows whose last send was cut off (a crash, a connection lost mid-send) may have been
        accepted: when the server files what it accepts in Sent (Gmail), look there first.
        Returns the rows still to send."""
        in_doubt = [r for r in rows if r.in_flight_at]
        if not in_doubt or self.sent_lookup is None:
            return rows
        try:
            found = self.sent_lookup([r.message_id for r in in_doubt])
        except Exception as e:  # the mailbox cannot tell now: these wait rather than go twice
            reason = f"could not look in the Sent folder: {type(e).__name__}: {e}"
            for row in in_doubt:
                self._settle(row, TempFail(reason, in_doubt=True), now, result)
            log_event("sent_lookup_failed", severity=30, rows=len(in_doubt), error=type(e).__name__)
            return [r for r in rows if not r.in_flight_at]
        for row in in_doubt:
            if row.message_id in found:
                self._settle(row, Sent("found in the Sent folder after an interrupted send; not sent again"),
                             now, result)
        log_event("sent_lookup", rows=len(in_doubt), found=len(found))
        return [r for r in rows if r.message_id not in found]

    def _claim(self, rows: list[OutboxRow], now: datetime) -> list[OutboxRow]:
        """Take the rows for this process, so a CLI flush beside the daemon never
        sends the same mail twice. A lease left by a dead process runs out by itself."""
        with self.store.transaction():
            return [row for row in rows if self.rows.claim(row.id, os.getpid(), now + LEASE, now)]

    def release_dead_leases(self) -> int:
        """At start-up: leases of processes that died mid-send (kill -9) are given back. On PostgreSQL
        this runs as a daemon becomes the active one: every other owner is dead or fenced (its pid may
        be another machine's, alive there), so all their leases come back now, not in 10 minutes."""
        others = [pid for pid in self.rows.lease_owners() if pid != os.getpid()]
        dead = others if self.store.kind == "postgresql" else [pid for pid in others if not _alive(pid)]
        if not dead:
            return 0
        with self.store.transaction():
            return self.rows.release_owners(dead)

    def _write_dry_run(self, rows: list[OutboxRow], now: datetime, result: FlushResult) -> None:
        self.dry_run_dir.mkdir(parents=True, exist_ok=True)
        for row in rows:
            raw = row.raw.encode() if isinstance(row.raw, str) else row.raw
            (self.dry_run_dir / f"{row.id:06d}-{row.kind}.eml").write_bytes(raw)
            self._settle(row, Sent(), now, result, status="dry-run")

    async def _connect(self) -> aiosmtplib.SMTP:
        client, _user = await connect.smtp_connect(self.cfg, self.password, self.token_source,
                                                   client=self.smtp_client(self.cfg.smtp))
        return client

    def _send(self, rows: list[OutboxRow], now: datetime, result: FlushResult) -> None:
        batch = SmtpBatch(self._connect, self.cfg.smtp.connections,
                          settle=lambda row, outcome: self._settle(row, outcome, now, result),
                          begin=lambda row: self._begin(row, now))
        asyncio.run(batch.send(rows))

    def _begin(self, row: OutboxRow, now: datetime) -> None:
        """Committed before the mail goes: after a crash, this row (and only it) may have been accepted."""
        with self.store.transaction(durable=False):
            self.rows.begin(row.id, now)

    def _ref(self, complaint_id: int | None, ref: str | None) -> str | None:
        if complaint_id is None:
            return None
        return ref if ref is not None else self.rows.ref_of(complaint_id)

    def _settle(self, row: OutboxRow, outcome: Sent | TempFail | PermFail, now: datetime, result: FlushResult,
                status: str = "sent") -> None:
        """The one place an outcome is stored: on the row, and on the complaint when it failed.
        A "sent" mark commits without waiting for the disk, but one in MARK_SYNC_EVERY waits."""
        unexpected = row.unexpected + (isinstance(outcome, TempFail) and outcome.unexpected)
        outcome = sending.final(outcome, unexpected)
        if isinstance(outcome, Sent):
            self._marks += 1
            durable = self._marks >= MARK_SYNC_EVERY
            with self.store.transaction(durable=durable):
                self.rows.mark_sent(row, status, now, outcome.note)
            if durable:
                self._marks = 0
            result.sent += 1
            if outcome.refused and row.complaint_id is not None:  # issue 16: a refused Cc leaves the Cc
                self._refused(row, outcome.refused, now)
            if status == "sent":
                log_event("mail_sent", self._ref(row.complaint_id, row.ref), kind=row.kind,
                          message_id=row.message_id, note=outcome.note)
        elif isinstance(outcome, PermFail):
            with self.store.transaction():
                self.rows.mark_failed(row, unexpected, outcome.reason)
                if row.complaint_id is not None:
                    self.store.add_event(row.complaint_id, now, "smtp", "send_failed",
                                         mail=row.kind, error=outcome.reason[:300])
            result.failed += 1
            log_event("send_failed", self._ref(row.complaint_id, row.ref), severity=40, kind=row.kind,
                      error=outcome.reason[:200])
        else:
            attempts = row.attempts + 1
            with self.store.transaction():
                self.rows.mark_retry(row, unexpected, outcome.reason,
                                     now + (PROBE_EVERY if outcome.quota else sending.backoff(attempts)),
                                     row.in_flight_at or iso(now) if outcome.in_doubt else None)
                if outcome.quota:
                    self._pause(now, outcome.reason)
            result.retry += 1
            log_event("send_retry", self._ref(row.complaint_id, row.ref), severity=30, kind=row.kind,
                      attempts=attempts, error=outcome.reason[:200])

    def _refused(self, row: OutboxRow, refused: tuple[tuple[str, str], ...], now: datetime) -> None:
        """Recipients refused at RCPT while others took the mail: recorded on the complaint, and
        a refused address of the customer's Cc dropped from it (core/parties.py); nothing is said
        about the customer unless she is the one refused."""
        with self.store.transaction():
            self.store.add_event(row.complaint_id, now, "smtp", "recipient_refused", mail=row.kind,
                                 refused=[f"{a}: {why}"[:200] for a, why in refused])
            complaint = self.store.complaint_by_id(row.complaint_id)
            failed = parties.failed_cc(complaint, [a for a, _ in refused]) if complaint else ()
            if failed:
                complaints.drop_cc(self.store, complaint, failed, now, "smtp", "refused by the server")
        log_event("recipient_refused", self._ref(row.complaint_id, row.ref), severity=30, kind=row.kind,
                  count=len(refused))

    def retry(self, now: datetime, row_id: int | None = None) -> int:
        """Put failed (or waiting) mail back in line now: `maildesk outbox --retry`."""
        with self.store.transaction():
            return self.rows.requeue(now, row_id)

    def cancel(self, row_id: int, reason: str, by: str, now: datetime) -> str | None:
        """An operator stops a mail for good (`maildesk outbox cancel`): recorded on the row and
        on its complaint. Returns why it cannot be cancelled, or None when it was."""
        with self.store.transaction():
            row = self.rows.for_cancel(row_id)
            if row is None:
                return f"no mail #{row_id} in the outbox"
            if row["status"] in ("sent", "dry-run", "cancelled"):
                return f"mail #{row_id} is {row['status']} already; nothing to cancel"
            if row["lease_owner"] and row["lease_until"] and row["lease_until"] >= iso(now) \
                    and _alive(row["lease_owner"]):
                return f"mail #{row_id} is being sent right now (pid {row['lease_owner']}); try again in a moment"
            self.rows.mark_cancelled(row_id, now, by, reason)
            if row["complaint_id"] is not None:
                self.store.add_event(row["complaint_id"], now, by, "send_cancelled", mail=row["kind"],
                                     reason=reason)
        log_event("send_cancelled", self._ref(row["complaint_id"], row["ref"]), kind=row["kind"], by=by)
        return None
