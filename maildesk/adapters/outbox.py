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

The adapter (`_send_one`) turns one send into an outcome value (Sent,
TempFail, PermFail); `_settle` is the one place that stores it.

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
import collections
import json
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib

from maildesk.core import addresses
from maildesk.testing import faults
from maildesk.logs import event as log_event
from maildesk.store.db import Store, iso

MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(minutes=10)  # longer than any one batch takes to send
BATCH = 500
MARK_SYNC_EVERY = 8  # a mark in 8 waits for the disk (see above)
ROWS_PER_CONNECTION = 25  # a batch opens a further connection for every 25 rows, up to [smtp] connections
MAX_UNEXPECTED_ATTEMPTS = 5  # an error nobody foresaw on one row: tried this often, then the row fails
# Gmail's daily limit reached (`550 5.4.5`): Gmail may refuse everything for up to 24 h. All sending
# pauses (state PAUSE_KEY: since, next probe, the answer) and one mail an hour tries whether it is over.
PAUSE_KEY = "sending_paused"
PROBE_EVERY = timedelta(hours=1)

# Near the daily limit, what goes first (tiers, lowest first): a customer's first answer and staff's
# answers to customers; then other mail (staff notifications, escalations, seller mail); last routine
# mail (status updates, the digest) and admin alerts. Only the first tier may use `[smtp] reserve`.
FIRST, OTHER, LAST = 0, 1, 2
FIRST_KINDS = ("ack", "relay", "ask", "resolution")


def tier(kind: str, audience: str, routine: bool) -> int:
    if audience == "customer" and kind in FIRST_KINDS:
        return FIRST
    return LAST if routine or audience == "admin" else OTHER


# the same rule for SQL's ORDER BY and GROUP BY (tests/unit/test_outbox.py checks they agree)
TIER_SQL = (f"(CASE WHEN audience = 'customer' AND kind IN ({', '.join(repr(k) for k in FIRST_KINDS)}) "
            f"THEN {FIRST} WHEN routine != 0 OR audience = 'admin' THEN {LAST} ELSE {OTHER} END)")


def allowance(rows: list[tuple[int, int]], room: int | None, reserve: int) -> int:
    """How many of `rows` ((tier, recipients), in sending order) may go now: Gmail counts
    recipients, so each row takes its recipients from what is left today (`room`; None: no
    limit), and only the first tier may use the reserve. A row that does not fit waits whole
    (never partly sent), and every row after it waits too: nothing jumps ahead of it."""
    if room is None:
        return len(rows)
    for n, (t, recipients) in enumerate(rows):
        if recipients > (room if t == FIRST else room - reserve):
            return n
        room -= recipients
    return len(rows)


def needs_smtputf8(mail_from: str, rcpts: list[str]) -> bool:
    """RFC 6531: an envelope with any internationalized address travels only with SMTPUTF8."""
    return any(addresses.needs_smtputf8(a) for a in (mail_from, *rcpts))


# --- the outcome of one send: `_send_one` returns one, `_settle` stores it -----------------------

@dataclass(frozen=True)
class Sent:
    note: str | None = None


@dataclass(frozen=True)
class TempFail:
    reason: str
    stop: bool = False  # the connection (or the server's patience) is gone: stop sending on it
    in_doubt: bool = False  # it broke mid-send: the server may have accepted the mail
    unexpected: bool = False  # an error nobody foresaw: counted, and bounded
    quota: bool = False  # Gmail's daily limit (5.4.5): all sending pauses


@dataclass(frozen=True)
class PermFail:
    reason: str


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
                 token_source=None, sent_lookup=None):
        self.cfg = cfg
        self.store = store
        self.password = password
        self.dry_run_dir = dry_run_dir
        self.token_source = token_source  # OAuth2: callable returning a fresh access token
        self.sent_lookup = sent_lookup  # Message-IDs -> those in the Sent folder; None: not asked
        self._marks = 0  # marks committed since the last one that waited for the disk

    # --- what may go now -----------------------------------------------------
    def sent_last_24h(self, now: datetime) -> int:
        """Recipients in the rolling 24 h, as Gmail counts them: ours, and what staff sent from
        the account itself (seen in the Sent folder in shared-mailbox mode)."""
        return self.store.scalar("SELECT coalesce(sum(json_array_length(rcpt)), 0) FROM outbox WHERE sent_at >= ?",
                                 iso(now - timedelta(hours=24))) + self.sent_elsewhere_24h(now)

    def sent_elsewhere_24h(self, now: datetime) -> int:
        return self.store.scalar("SELECT coalesce(sum(recipients), 0) FROM sent_elsewhere WHERE sent_at >= ?",
                                 iso(now - timedelta(hours=24)))

    def paused(self) -> dict | None:
        """Since when Gmail's daily limit pauses all sending, the next probe and Gmail's answer; None: not paused."""
        return json.loads(self.store.get_state(PAUSE_KEY) or "null")

    def due(self, now: datetime) -> tuple[list, int]:
        """Rows to send now, first tier first, and how many were held back by the daily limit.

        Recipients count (a team of 4 costs 4): near the limit (`[smtp] reserve`
        recipients left) only the first tier goes: a customer's first answer and staff
        answers (see `tier`, `allowance`). After Gmail's 5.4.5 nothing goes until the
        next probe, and then one row."""
        pause = self.paused()
        if pause and iso(now) < pause["next_probe"]:
            return [], self._waiting(now)
        rows = self.store.all("SELECT id, message_id, complaint_id, kind, routine, mail_from, rcpt, raw, attempts, "
                              f"unexpected, in_flight_at, {TIER_SQL} AS tier, json_array_length(rcpt) AS recipients, "
                              "(SELECT ref FROM complaints c WHERE c.id = outbox.complaint_id) AS ref "
                              "FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? "
                              "AND (lease_until IS NULL OR lease_until < ?) "
                              "ORDER BY tier, id LIMIT ?", iso(now), iso(now), BATCH)
        limit = self.cfg.smtp_daily_limit
        allowed = rows
        if limit:
            allowed = rows[:allowance([(r["tier"], r["recipients"]) for r in rows],
                                      limit - self.sent_last_24h(now), self.cfg.smtp.reserve)]
            if len(allowed) < len(rows):
                log_event("sending_limit", level=30, held=len(rows) - len(allowed), limit=limit)
        if pause:  # the probe: one mail tries whether Gmail takes mail again
            allowed = allowed[:1]
        return allowed, len(rows) - len(allowed)

    def _waiting(self, now: datetime) -> int:
        return self.store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?",
                                 iso(now))

    def sending_status(self, now: datetime) -> dict:
        """The daily limit as the digest and `status` show it: recipients in the last 24 h (of
        which `sent_elsewhere` staff sent from the account itself), how much due mail the
        limit or a pause holds back right now, and the pause (None, or since/next_probe/error)."""
        limit = self.cfg.smtp_daily_limit
        sent = self.sent_last_24h(now)
        pause = self.paused()
        waiting = self.store.all(f"SELECT {TIER_SQL} AS tier, json_array_length(rcpt) FROM outbox "
                                 "WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY tier, id", iso(now))
        held = 0
        if pause:
            held = len(waiting)
        elif limit:
            held = len(waiting) - allowance([tuple(r) for r in waiting], limit - sent, self.cfg.smtp.reserve)
        return {"limit": limit, "reserve": self.cfg.smtp.reserve, "sent_last_24h": sent,
                "sent_elsewhere": self.sent_elsewhere_24h(now), "held": held, "paused": pause}

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
        log_event("sending_paused", level=40, since=pause["since"], next_probe=pause["next_probe"])

    def _resume(self, now: datetime) -> None:
        pause = self.paused()
        with self.store.transaction():
            self.store.conn.execute("DELETE FROM state WHERE key = ?", (PAUSE_KEY,))
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

    def _settle_in_doubt(self, rows, now: datetime, result: FlushResult) -> list:
        """Rows whose last send was cut off (a crash, a connection lost mid-send) may have been
        accepted: when the server files what it accepts in Sent (Gmail), look there first.
        Returns the rows still to send."""
        in_doubt = [r for r in rows if r["in_flight_at"]]
        if not in_doubt or self.sent_lookup is None:
            return rows
        try:
            found = self.sent_lookup([r["message_id"] for r in in_doubt])
        except Exception as e:  # the mailbox cannot tell now: these wait rather than go twice
            reason = f"could not look in the Sent folder: {type(e).__name__}: {e}"
            for row in in_doubt:
                self._settle(row, TempFail(reason, in_doubt=True), now, result)
            log_event("sent_lookup_failed", level=30, rows=len(in_doubt), error=type(e).__name__)
            return [r for r in rows if not r["in_flight_at"]]
        for row in in_doubt:
            if row["message_id"] in found:
                self._settle(row, Sent("found in the Sent folder after an interrupted send; not sent again"),
                             now, result)
        log_event("sent_lookup", rows=len(in_doubt), found=len(found))
        return [r for r in rows if r["message_id"] not in found]

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

    async def _connect(self) -> aiosmtplib.SMTP:
        client = self._client()
        try:
            await client.connect()
            await self._login(client)
        except BaseException:
            client.close()
            raise
        return client

    async def _send_all(self, rows, now: datetime, result: FlushResult) -> None:
        try:
            client = await self._connect()
        except Exception as e:  # unreachable, refused, or anything else: every row waits, none is to blame
            for row in rows:
                self._settle(row, TempFail(f"connect: {type(e).__name__}: {e}"), now, result)
            log_event("smtp_unreachable", level=40, error=f"{type(e).__name__}", code=getattr(e, "code", None))
            return
        queue = collections.deque(rows)  # shared: each connection takes the next row, in order
        stop = []  # set when one connection meets trouble: the others finish the mail in hand and stop
        extra = min(max(self.cfg.smtp.connections, 1), len(rows) // ROWS_PER_CONNECTION) - 1
        await asyncio.gather(self._send_queue(client, queue, stop, now, result),
                             *(self._send_extra(queue, stop, now, result) for _ in range(max(extra, 0))))
        # rows we never reached after a broken connection stay queued for the next flush

    async def _send_extra(self, queue, stop: list, now: datetime, result: FlushResult) -> None:
        """A further connection for a big batch; if it cannot be had, the others do without it."""
        try:
            client = await self._connect()
        except Exception as e:
            log_event("smtp_extra_connection_refused", level=30, error=f"{type(e).__name__}",
                      code=getattr(e, "code", None))
            return
        await self._send_queue(client, queue, stop, now, result)

    async def _send_queue(self, client: aiosmtplib.SMTP, queue, stop: list, now: datetime,
                          result: FlushResult) -> None:
        try:
            while queue and not stop:
                row = queue.popleft()
                faults.step("before_send")
                outcome = await self._send_one(client, row, now)
                if isinstance(outcome, Sent):
                    faults.step("after_send_before_mark")
                self._settle(row, outcome, now, result)
                if isinstance(outcome, TempFail) and outcome.stop:
                    stop.append(outcome.reason)
                    break
                if isinstance(outcome, TempFail) and outcome.unexpected:
                    client = await self._recover(client)  # the envelope may be half open
                    if client is None:
                        break
        finally:
            if client is not None:
                try:
                    await client.quit()
                except Exception:
                    client.close()

    async def _recover(self, client: aiosmtplib.SMTP) -> aiosmtplib.SMTP | None:
        """After an error nobody foresaw, a clean envelope for the next row: RSET, or else a new
        connection; None when neither can be had (the rest waits for the next flush)."""
        try:
            await client.rset()
            return client
        except Exception:
            client.close()
        try:
            return await self._connect()
        except Exception as e:
            log_event("smtp_unreachable", level=40, error=f"{type(e).__name__}", code=getattr(e, "code", None))
            return None

    async def _send_one(self, client: aiosmtplib.SMTP, row, now: datetime) -> Sent | TempFail | PermFail:
        """One mail handed to the server; every way it can end is an outcome, never an exception."""
        try:
            rcpts = json.loads(row["rcpt"])
            options = []
            for address in (row["mail_from"], *rcpts):
                problem = addresses.smtp_problem(address)
                if problem:  # before anything is said to the server
                    return PermFail(problem)
            if needs_smtputf8(row["mail_from"], rcpts):
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
                if not client.supports_extension("smtputf8"):
                    odd = next(a for a in (*rcpts, row["mail_from"]) if not a.isascii())
                    return PermFail(f"server does not offer SMTPUTF8, needed for the internationalized "
                                    f"address {odd}")
                options = ["SMTPUTF8"]
            self._begin(row, now)
            await client.sendmail(row["mail_from"], rcpts, row["raw"], mail_options=options)
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            quota = next((r for r in e.recipients if "5.4.5" in r.message), None)
            if quota:  # Gmail's daily limit, answered to RCPT TO: wait, never fail the mail
                return TempFail(f"{quota.code} {quota.message}", stop=True, quota=True)
            reason = f"recipients refused: {codes}"
            return PermFail(reason) if all(c >= 500 for c in codes) else TempFail(reason)
        except aiosmtplib.SMTPResponseException as e:
            quota = "5.4.5" in e.message  # Gmail's daily sending limit: wait, never fail the mail
            reason = f"{e.code} {e.message}"
            if e.code >= 500 and not quota:
                return PermFail(reason)
            return TempFail(reason, stop=e.code == 421 or quota, quota=quota)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as e:
            return TempFail(f"{type(e).__name__}: {e}", stop=True, in_doubt=True)
        except Exception as e:  # a bulkhead: this row's trouble stays this row's
            return TempFail(f"unexpected {type(e).__name__}: {e}", unexpected=True)
        return Sent()

    def _begin(self, row, now: datetime) -> None:
        """Committed before the mail goes: after a crash, this row (and only it) may have been accepted."""
        with self.store.transaction(durable=False):
            self.store.conn.execute("UPDATE outbox SET in_flight_at = ? WHERE id = ?", (iso(now), row["id"]))

    def _ref(self, row) -> str | None:
        if row["complaint_id"] is None:
            return None
        if "ref" in row.keys():  # due() reads it with the row
            return row["ref"]
        return self.store.scalar("SELECT ref FROM complaints WHERE id = ?", row["complaint_id"])

    def _mark(self, row, now: datetime, status: str, note: str | None) -> None:
        self._marks += 1
        durable = self._marks >= MARK_SYNC_EVERY
        with self.store.transaction(durable=durable):
            self.store.update("outbox", row["id"], {"status": status, "sent_at": iso(now), "in_flight_at": None,
                                                    "attempts": row["attempts"] + 1, "last_error": note})
        if durable:
            self._marks = 0

    def _settle(self, row, outcome: Sent | TempFail | PermFail, now: datetime, result: FlushResult) -> None:
        """The one place an outcome is stored: on the row, and on the complaint when it failed."""
        if isinstance(outcome, Sent):
            self._mark(row, now, "sent", outcome.note)
            result.sent += 1
            log_event("mail_sent", self._ref(row), kind=row["kind"], message_id=row["message_id"],
                      note=outcome.note)
            return
        attempts = row["attempts"] + 1
        unexpected = row["unexpected"] + (isinstance(outcome, TempFail) and outcome.unexpected)
        if isinstance(outcome, TempFail) and unexpected >= MAX_UNEXPECTED_ATTEMPTS and outcome.unexpected:
            outcome = PermFail(f"{outcome.reason} (gave up after {unexpected} tries)")
        if isinstance(outcome, PermFail):
            with self.store.transaction():
                self.store.update("outbox", row["id"], {"status": "failed", "attempts": attempts,
                                                        "unexpected": unexpected, "in_flight_at": None,
                                                        "last_error": outcome.reason[:500]})
                if row["complaint_id"] is not None:
                    self.store.add_event(row["complaint_id"], now, "smtp", "send_failed",
                                         mail=row["kind"], error=outcome.reason[:300])
            result.failed += 1
            log_event("send_failed", self._ref(row), level=40, kind=row["kind"], error=outcome.reason[:200])
            return
        with self.store.transaction():
            self.store.update("outbox", row["id"], {
                "attempts": attempts, "unexpected": unexpected, "last_error": outcome.reason[:500],
                "next_attempt_at": iso(now + (PROBE_EVERY if outcome.quota else backoff(attempts))),
                "in_flight_at": row["in_flight_at"] or iso(now) if outcome.in_doubt else None})
            if outcome.quota:
                self._pause(now, outcome.reason)
        result.retry += 1
        log_event("send_retry", self._ref(row), level=30, kind=row["kind"], attempts=attempts,
                  error=outcome.reason[:200])

    def retry(self, now: datetime, row_id: int | None = None) -> int:
        """Put failed (or waiting) mail back in line now: `maildesk outbox --retry`."""
        with self.store.transaction():
            # never 'sent' (a duplicate), 'dry-run' (trial mail must never go out later) nor 'cancelled'
            where, params = ("id = ?", [row_id]) if row_id else ("1", [])
            cur = self.store.conn.execute(
                f"UPDATE outbox SET status = 'queued', next_attempt_at = ?, unexpected = 0 WHERE {where} "
                "AND status IN ('failed', 'queued')", [iso(now), *params])
            return cur.rowcount

    def cancel(self, row_id: int, reason: str, by: str, now: datetime) -> str | None:
        """An operator stops a mail for good (`maildesk outbox cancel`): recorded on the row and
        on its complaint. Returns why it cannot be cancelled, or None when it was."""
        with self.store.transaction():
            row = self.store.one("SELECT id, status, kind, complaint_id, lease_owner, lease_until "
                                 "FROM outbox WHERE id = ?", row_id)
            if row is None:
                return f"no mail #{row_id} in the outbox"
            if row["status"] in ("sent", "dry-run", "cancelled"):
                return f"mail #{row_id} is {row['status']} already; nothing to cancel"
            if row["lease_owner"] and row["lease_until"] and row["lease_until"] >= iso(now) \
                    and _alive(row["lease_owner"]):
                return f"mail #{row_id} is being sent right now (pid {row['lease_owner']}); try again in a moment"
            self.store.update("outbox", row_id, {"status": "cancelled", "cancelled_at": iso(now),
                                                 "cancelled_by": by, "cancel_reason": reason,
                                                 "lease_until": None, "lease_owner": None})
            if row["complaint_id"] is not None:
                self.store.add_event(row["complaint_id"], now, by, "send_cancelled", mail=row["kind"],
                                     reason=reason)
        log_event("send_cancelled", self._ref(row), kind=row["kind"], by=by)
        return None
