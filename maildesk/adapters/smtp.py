"""SMTP sending over aiosmtplib: a batch of outbox rows handed to the server over one connection
(more for a backlog: one per ROWS_PER_CONNECTION rows, up to `[smtp] connections`). Each send
ends as an outcome value (core/sending.py: Sent, TempFail, PermFail), never an exception, and
is handed at once to `settle`, the outbox's one writer; `begin` marks a row in flight just
before the server gets it. Rows never reached (a broken connection) stay queued."""
from __future__ import annotations

import asyncio
import collections
import json
from typing import Awaitable, Callable

import aiosmtplib

from maildesk.core import addresses
from maildesk.core.sending import PermFail, Sent, TempFail
from maildesk.logs import event as log_event
from maildesk.testing import faults

ROWS_PER_CONNECTION = 25  # a batch opens a further connection for every 25 rows, up to [smtp] connections


def needs_smtputf8(mail_from: str, rcpts: list[str]) -> bool:
    """RFC 6531: an envelope with any internationalized address travels only with SMTPUTF8."""
    return any(addresses.needs_smtputf8(a) for a in (mail_from, *rcpts))


class SmtpBatch:
    """One batch. `connect` gives a connected, signed-in client (adapters/connect.py); rows
    need `mail_from`, `rcpt` (a JSON list) and `raw`."""

    def __init__(self, connect: Callable[[], Awaitable[aiosmtplib.SMTP]], connections: int,
                 settle: Callable[[object, Sent | TempFail | PermFail], None], begin: Callable[[object], None]):
        self.connect = connect
        self.connections = connections
        self.settle = settle
        self.begin = begin

    async def send(self, rows: list) -> None:
        try:
            client = await self.connect()
        except Exception as e:  # unreachable, refused, or anything else: every row waits, none is to blame
            for row in rows:
                self.settle(row, TempFail(f"connect: {type(e).__name__}: {e}"))
            log_event("smtp_unreachable", severity=40, error=f"{type(e).__name__}", code=getattr(e, "code", None))
            return
        queue = collections.deque(rows)  # shared: each connection takes the next row, in order
        stop = []  # set when one connection meets trouble: the others finish the mail in hand and stop
        extra = min(max(self.connections, 1), len(rows) // ROWS_PER_CONNECTION) - 1
        await asyncio.gather(self._send_queue(client, queue, stop),
                             *(self._send_extra(queue, stop) for _ in range(max(extra, 0))))
        # rows we never reached after a broken connection stay queued for the next flush

    async def _send_extra(self, queue, stop: list) -> None:
        """A further connection for a big batch; if it cannot be had, the others do without it."""
        try:
            client = await self.connect()
        except Exception as e:
            log_event("smtp_extra_connection_refused", severity=30, error=f"{type(e).__name__}",
                      code=getattr(e, "code", None))
            return
        await self._send_queue(client, queue, stop)

    async def _send_queue(self, client: aiosmtplib.SMTP, queue, stop: list) -> None:
        try:
            while queue and not stop:
                row = queue.popleft()
                faults.step("before_send")
                outcome = await self._send_one(client, row)
                if isinstance(outcome, Sent):
                    faults.step("after_send_before_mark")
                self.settle(row, outcome)
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
            return await self.connect()
        except Exception as e:
            log_event("smtp_unreachable", severity=40, error=f"{type(e).__name__}", code=getattr(e, "code", None))
            return None

    async def _send_one(self, client: aiosmtplib.SMTP, row) -> Sent | TempFail | PermFail:
        """One mail handed to the server; every way it can end is an outcome, never an exception."""
        try:
            rcpts = json.loads(row.rcpt)
            options = []
            for address in (row.mail_from, *rcpts):
                problem = addresses.smtp_problem(address)
                if problem:  # before anything is said to the server
                    return PermFail(problem)
            if needs_smtputf8(row.mail_from, rcpts):
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
                if not client.supports_extension("smtputf8"):
                    odd = next(a for a in (*rcpts, row.mail_from) if not a.isascii())
                    return PermFail(f"server does not offer SMTPUTF8, needed for the internationalized "
                                    f"address {odd}")
                options = ["SMTPUTF8"]
            self.begin(row)
            errors, _ = await client.sendmail(row.mail_from, rcpts, row.raw, mail_options=options)
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
        # some recipients refused, the others took it (a Cc'd address that does not exist): sent
        return Sent(refused=tuple((a, f"{r.code} {r.message}") for a, r in (errors or {}).items()))

