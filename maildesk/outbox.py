"""The persistent outbox: mail is written with the state change that caused
it, then sent here over one reused SMTP connection.

Each attempt ends as sent, a temporary failure (4xx, connection trouble:
retried with back-off, never dropped) or a permanent failure (5xx:
recorded on the complaint for staff to see). A row is marked sent right
after the server accepts it; the only window for a duplicate is a crash
between those two steps, and then the copy carries the same Message-ID.
"""
from __future__ import annotations

import asyncio
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

    # --- what may go now -----------------------------------------------------
    def sent_last_24h(self, now: datetime) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE sent_at >= ?", iso(now - timedelta(hours=24)))

    def due(self, now: datetime) -> tuple[list, int]:
        """Rows to send now, and how many were held back by the daily limit.

        Near the limit, routine mail (status updates, digests) waits so that
        acknowledgements and staff answers still go out (`[smtp] reserve`)."""
        rows = self.store.all("SELECT id, message_id, complaint_id, kind, routine, mail_from, rcpt, raw, attempts "
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
            with self.store.transaction():  # rows not reached (broken connection) wait for the next flush
                self.store.conn.execute(
                    f"UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = ? "
                    f"AND id IN ({', '.join(str(int(r['id'])) for r in rows)})", (os.getpid(),))
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
        return aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout_seconds,
                               use_tls=s.security == "ssl", start_tls=(s.security == "starttls"),
                               tls_context=ssl.create_default_context())

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
        try:
            for row in rows:
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
                        break
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as e:
                    self._retry(row, now, f"{type(e).__name__}: {e}", result, permanent=False)
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
        # rows we never reached after a broken connection stay queued for the next flush

    def _ref(self, row) -> str | None:
        if row["complaint_id"] is None:
            return None
        return self.store.scalar("SELECT ref FROM complaints WHERE id = ?", row["complaint_id"])

    def _mark(self, row, now: datetime, status: str, error: str | None) -> None:
        with self.store.transaction():
            self.store.update("outbox", row["id"], {"status": status, "sent_at": iso(now),
                                                    "attempts": row["attempts"] + 1, "last_error": error})

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
