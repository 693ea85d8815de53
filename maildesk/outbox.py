"""The persistent outbox: mail is written with the state change that caused
it, then sent here over reused SMTP connections (one; up to `[smtp]
connections` side by side when a batch is big: a backlog).

Each attempt ends as sent, a temporary failure (4xx, connection trouble:
retried with back-off, never dropped) or a permanent failure (5xx:
recorded on the complaint for staff to see). A row is marked sent right
after the server accepts it; the only window for a duplicate is a crash
between those two steps, and then the copy carries the same Message-ID.

How wide that window is:
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
import collections
import json
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib

from . import faults
from .logs import event as log_event
from .oauth2 import TokenError
from .store import Store, iso

MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(minutes=10)  # longer than any one batch takes to send
BATCH = 500
MARK_SYNC_EVERY = 8  # a mark in 8 waits for the disk (see above)
ROWS_PER_CONNECTION = 25  # a batch opens a further connection for every 25 rows, up to [smtp] connections


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


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class Outbox:
    def __init__(self, cfg, store: Store, password: str | None = None, dry_run_dir: Path | None = None,
                 token_source=None):
        self.cfg = cfg
        self.store = store
        self.password = password
        self.dry_run_dir = dry_run_dir
        self.token_source = token_source  # OAuth2: callable returning a fresh access token
        self._marks = 0  # marks committed since the last one that waited for the disk

    # --- what may go now -----------------------------------------------------
    def sent_last_24h(self, now: datetime) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE sent_at >= ?", iso(now - timedelta(hours=24)))

    def due(self, now: datetime) -> tuple[list, int]:
        """Rows to send now, and how many were held back by the daily limit.

        Near the limit, routine mail (status updates, digests) waits so that
        acknowledgements and staff answers still go out (`[smtp] reserve`)."""
        rows = self.store.all("SELECT id, message_id, complaint_id, kind, routine, mail_from, rcpt, raw, attempts, "
                              "(SELECT ref FROM complaints c WHERE c.id = outbox.complaint_id) AS ref "
                              "FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? "
                              "AND (lease_until IS NULL OR lease_until < ?) "
                              "ORDER BY routine, id LIMIT ?", iso(now), iso(now), BATCH)
        limit = self.cfg.smtp_daily_limit
        if not limit:
            return rows, 0
        room = limit - self.sent_last_24h(now)
        allowed = []
        for row in rows:
            if room <= 0 or (row["routine"] and room <= self.cfg.smtp.reserve):
                continue
            allowed.append(row)
            room -= 1
        held = len(rows) - len(allowed)
        if held:
            log_event("sending_limit", level=30, held=held, limit=limit)
        return allowed, held

    def sending_status(self, now: datetime) -> dict:
        """The daily limit as the digest and `status` show it: what went out in
        the last 24 h and how much due mail the limit holds back right now."""
        limit = self.cfg.smtp_daily_limit
        sent = self.sent_last_24h(now)
        counts = dict(self.store.all("SELECT routine, count(*) FROM outbox WHERE status = 'queued' "
                                     "AND next_attempt_at <= ? GROUP BY routine", iso(now)))
        urgent, routine = counts.get(0, 0), counts.get(1, 0)
        held = 0
        if limit:
            room = max(limit - sent, 0)
            urgent_go = min(urgent, room)
            routine_go = min(routine, max(room - urgent_go - self.cfg.smtp.reserve, 0))
            held = urgent + routine - urgent_go - routine_go
        return {"limit": limit, "reserve": self.cfg.smtp.reserve, "sent_last_24h": sent, "held": held}

    def is_ours(self, message_id: str) -> bool:
        """Did maildesk send this? Gmail files what we send through it in Sent too."""
        return self.store.one("SELECT 1 FROM outbox WHERE message_id = ?", message_id) is not None

    def depth(self) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued'")

    # --- sending ---------------------------------------------------------------
    def flush(self, now: datetime, stopping=None) -> FlushResult:
        """Send everything due now, BATCH rows (one connection) at a time. Stops after a
        batch that did not go through whole (server trouble, daily limit) or when
        `stopping()` says so; what is left stays queued."""
        total = FlushResult()
        while True:
            result = self._flush_batch(now)
            for name in ("sent", "retry", "failed", "held"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            full = result.sent + result.retry + result.failed == BATCH
            if not (full and result.sent and not result.held) or (stopping and stopping()):
                return total

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
                asyncio.run(self._send_all(rows, now, result))
        finally:
            self._marks = 0  # this commit waits for the disk: every mark before it is safe too
            with self.store.transaction():  # rows not reached (broken connection) wait for the next flush
                # one statement for every batch: a statement text with the ids in it would be prepared
                # anew each time and kept in sqlite3's statement cache (the process grew ~0.3 MB per 1,000 messages)
                self.store.conn.executemany(
                    "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = ? AND lease_owner = ?",
                    [(r["id"], os.getpid()) for r in rows])
        return result

    def _claim(self, rows, now: datetime) -> list:
        """Take the rows for this process, so a CLI flush beside the daemon never
        sends the same mail twice. A lease left by a dead process runs out by itself."""
        claimed = []
        with self.store.transaction():
            for row in rows:
                cur = self.store.conn.execute(
                    "UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE id = ? AND status = 'queued' "
                    "AND (lease_until IS NULL OR lease_until < ?)",
                    (iso(now + LEASE), os.getpid(), row["id"], iso(now)))
                if cur.rowcount == 1:
                    claimed.append(row)
        return claimed

    def release_dead_leases(self) -> int:
        """At start-up: leases of processes that died mid-send (kill -9) are given back."""
        owners = [r[0] for r in self.store.all("SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL")]
        dead = [pid for pid in owners if not _alive(pid)]
        if not dead:
            return 0
        with self.store.transaction():
            cur = self.store.conn.execute(
                f"UPDATE outbox SET lease_until = NULL, lease_owner = NULL "
                f"WHERE lease_owner IN ({', '.join(str(int(p)) for p in dead)})")
        return cur.rowcount

    def _write_dry_run(self, rows, now: datetime, result: FlushResult) -> None:
        self.dry_run_dir.mkdir(parents=True, exist_ok=True)
        for row in rows:
            name = f"{row['id']:06d}-{row['kind']}.eml"
            (self.dry_run_dir / name).write_bytes(row["raw"])
            self._mark(row, now, "dry-run", None)
            result.sent += 1

    def _client(self) -> aiosmtplib.SMTP:
        s = self.cfg.smtp
        # loading the system's CA certificates takes ~20 ms: only when TLS is used (always verified)
        return aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout_seconds,
                               use_tls=s.security == "ssl", start_tls=(s.security == "starttls"),
                               tls_context=ssl.create_default_context() if s.security != "none" else None)

    async def _login(self, client: aiosmtplib.SMTP) -> None:
        s = self.cfg.smtp
        if self.token_source is not None:
            await client.auth_xoauth2(s.username or self.cfg.mailbox.username, self.token_source())
        elif s.username:
            await client.login(s.username, self.password or "")

    async def _send_all(self, rows, now: datetime, result: FlushResult) -> None:
        client = self._client()
        try:
            await client.connect()
            await self._login(client)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, TokenError) as e:
            code = getattr(e, "code", None)
            for row in rows:
                self._retry(row, now, f"connect: {type(e).__name__}: {e}", result, permanent=False)
            log_event("smtp_unreachable", level=40, error=f"{type(e).__name__}", code=code)
            return
        queue = collections.deque(rows)  # shared: each connection takes the next row, in order
        stop = []  # set when one connection meets trouble: the others finish the mail in hand and stop
        extra = min(max(self.cfg.smtp.connections, 1), len(rows) // ROWS_PER_CONNECTION) - 1
        await asyncio.gather(self._send_queue(client, queue, stop, now, result),
                             *(self._send_extra(queue, stop, now, result) for _ in range(max(extra, 0))))
        # rows we never reached after a broken connection stay queued for the next flush

    async def _send_extra(self, queue, stop: list, now: datetime, result: FlushResult) -> None:
        """A further connection for a big batch; if it cannot be had, the others do without it."""
        client = self._client()
        try:
            await client.connect()
            await self._login(client)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, TokenError) as e:
            log_event("smtp_extra_connection_refused", level=30, error=f"{type(e).__name__}",
                      code=getattr(e, "code", None))
            client.close()
            return
        await self._send_queue(client, queue, stop, now, result)

    async def _send_queue(self, client: aiosmtplib.SMTP, queue, stop: list, now: datetime,
                          result: FlushResult) -> None:
        try:
            while queue and not stop:
                row = queue.popleft()
                faults.step("before_send")
                try:
                    await client.sendmail(row["mail_from"], json.loads(row["rcpt"]), row["raw"])
                except aiosmtplib.SMTPRecipientsRefused as e:
                    codes = [r.code for r in e.recipients]
                    self._retry(row, now, f"recipients refused: {codes}", result,
                                permanent=all(c >= 500 for c in codes))
                except aiosmtplib.SMTPResponseException as e:
                    quota = "5.4.5" in e.message  # Gmail's daily sending limit: wait, never fail the mail
                    self._retry(row, now, f"{e.code} {e.message}", result, permanent=e.code >= 500 and not quota)
                    if e.code == 421 or quota:
                        stop.append(e.code)
                        break
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as e:
                    self._retry(row, now, f"{type(e).__name__}: {e}", result, permanent=False)
                    stop.append(type(e).__name__)
                    break
                else:
                    faults.step("after_send_before_mark")
                    self._mark(row, now, "sent", None)
                    result.sent += 1
                    log_event("mail_sent", self._ref(row), kind=row["kind"], message_id=row["message_id"])
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                client.close()

    def _ref(self, row) -> str | None:
        if row["complaint_id"] is None:
            return None
        if "ref" in row.keys():  # due() reads it with the row
            return row["ref"]
        return self.store.scalar("SELECT ref FROM complaints WHERE id = ?", row["complaint_id"])

    def _mark(self, row, now: datetime, status: str, error: str | None) -> None:
        self._marks += 1
        durable = self._marks >= MARK_SYNC_EVERY
        with self.store.transaction(durable=durable):
            self.store.update("outbox", row["id"], {"status": status, "sent_at": iso(now),
                                                    "attempts": row["attempts"] + 1, "last_error": error})
        if durable:
            self._marks = 0

    def _retry(self, row, now: datetime, error: str, result: FlushResult, permanent: bool) -> None:
        attempts = row["attempts"] + 1
        with self.store.transaction():
            if permanent:
                self.store.update("outbox", row["id"], {"status": "failed", "attempts": attempts,
                                                        "last_error": error[:500]})
                if row["complaint_id"] is not None:
                    self.store.add_event(row["complaint_id"], now, "smtp", "send_failed",
                                         mail=row["kind"], error=error[:300])
            else:
                self.store.update("outbox", row["id"], {"attempts": attempts, "last_error": error[:500],
                                                        "next_attempt_at": iso(now + backoff(attempts))})
        if permanent:
            result.failed += 1
            log_event("send_failed", self._ref(row), level=40, kind=row["kind"], error=error[:200])
        else:
            result.retry += 1
            log_event("send_retry", self._ref(row), level=30, kind=row["kind"], attempts=attempts,
                      error=error[:200])

    def retry(self, now: datetime, row_id: int | None = None) -> int:
        """Put failed (or waiting) mail back in line now: `maildesk outbox --retry`."""
        with self.store.transaction():
            # never 'sent' (a duplicate) nor 'dry-run' (trial mail must never go out later)
            where, params = ("id = ?", [row_id]) if row_id else ("1", [])
            cur = self.store.conn.execute(
                f"UPDATE outbox SET status = 'queued', next_attempt_at = ? WHERE {where} "
                "AND status IN ('failed', 'queued')", [iso(now), *params])
            return cur.rowcount
