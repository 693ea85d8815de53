"""An SMTP server (aiosmtpd) for tests and the demo: accepts anything, remembers it, fails on request."""

from __future__ import annotations

import asyncio
import errno
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller

from maildesk.testing.dovecot import Dovecot, mailbox_name
from maildesk.testing.localstack import HOST, free_port, port_users as _holders


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: float


class SmtpSink:
    """An SMTP server that accepts anything (no AUTH) and remembers it.

    With ``deliver_to`` it also plays MX: mail for a local address is APPENDed into the Dovecot
    INBOX, so a complaint sent over SMTP shows up in the support mailbox. A local address that is
    not a Dovecot user (an alias such as help@) goes to the first Dovecot user; ``local_addresses``
    defaults to the Dovecot users. If that APPEND fails the sender gets a 451 and nothing is
    captured, as with a real MX.

    It offers SMTPUTF8 (internationalized addresses), as Gmail does; ``smtputf8=False`` makes
    a server that does not. With ``files_sent`` it files every accepted mail in that Dovecot's
    \\Sent folder (first user, flagged \\Seen) before answering 250, as smtp.gmail.com does.
    """

    def __init__(
        self,
        deliver_to: Dovecot | None = None,
        local_addresses: Iterable[str] | None = None,
        spool_dir: Path | None = None,
        smtputf8: bool = True,
        files_sent: Dovecot | None = None,
    ) -> None:
        self.deliver_to = deliver_to
        self.smtputf8 = smtputf8
        self.files_sent = files_sent
        if local_addresses is None:
            local_addresses = deliver_to.users if deliver_to else ()
        self.local_addresses = {a.lower() for a in local_addresses}
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.host = HOST
        self.port = free_port()
        self._cond = threading.Condition()
        self._messages: list[Captured] = []
        self._spooled = 0
        self._fail_left = 0
        self._fail_reply = ""
        self._refuse_reply: str | None = None
        self._refuse_at = "DATA"
        self.unknown_users: set[str] = set()  # refused at RCPT TO with 550 5.1.1, the others accepted
        self._connections = 0
        self._controller: Controller | None = None
        self._started = False  # once started, the port is known to the tests and stays

    # -- captured mail ------------------------------------------------------------------------

    @property
    def messages(self) -> list[Captured]:
        """A snapshot of everything captured so far."""
        with self._cond:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """SMTP sessions opened so far (each greets once with EHLO): how often a client logged in."""
        with self._cond:
            return self._connections

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10) -> list[Captured]:
        """Block until at least ``count`` messages were captured in total."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages within {timeout} s, got {len(self._messages)}")
            return list(self._messages)

    # -- fault injection ----------------------------------------------------------------------

    def fail_next(self, n: int, code: int = 451, message: str = "4.3.0 try again later") -> None:
        """Answer the next ``n`` DATA commands with ``code`` (retry and bounce paths)."""
        with self._cond:
            self._fail_left = n
            self._fail_reply = f"{code} {message}"

    def refuse_all(self, code: int = 554, message: str = "5.7.1 refused", at: str = "DATA") -> None:
        """Refuse every mail until accept_all(), after DATA or (``at="RCPT"``) at each RCPT TO,
        as Gmail answers its daily limit either way."""
        with self._cond:
            self._refuse_reply = f"{code} {message}"
            self._refuse_at = at

    def accept_all(self) -> None:
        with self._cond:
            self._refuse_reply = None
            self._fail_left = 0

    def _injected_failure(self) -> str | None:
        with self._cond:
            if self._refuse_reply and self._refuse_at == "DATA":
                return self._refuse_reply
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_reply
            return None

    # -- aiosmtpd handler ---------------------------------------------------------------------

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        if session.host_name is None:  # the first greeting of this connection
            with self._cond:
                self._connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        with self._cond:
            if self._refuse_reply and self._refuse_at == "RCPT":
                return self._refuse_reply
            if address.lower() in self.unknown_users:
                return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        failure = self._injected_failure()
        if failure:
            return failure
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        rcpts = list(envelope.rcpt_tos)
        if self.deliver_to is not None:
            local = [r for r in rcpts if r.lower() in self.local_addresses]
            if local:
                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(None, self._deliver, envelope.mail_from, local, data)
                except Exception as exc:  # like a real MX: temporary failure, the sender retries
                    return f"451 4.3.0 local delivery failed: {exc}"
        if self.files_sent is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._file_sent, data)
            except Exception as exc:
                return f"451 4.3.0 filing in Sent failed: {exc}"
        captured = Captured(envelope.mail_from, rcpts, data, time.time())
        if self.spool_dir is not None:  # before notifying, so wait_for() implies the file exists
            self._spool(captured)
        with self._cond:
            self._messages.append(captured)
            self._cond.notify_all()
        return "250 2.0.0 OK"

    def _deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        """APPEND into each recipient's INBOX, with the Return-Path an MDA would add."""
        dovecot = self.deliver_to
        assert dovecot is not None
        by_name = {u.lower(): u for u in dovecot.users}
        raw = f"Return-Path: <{mail_from or ''}>\r\n".encode() + data
        for user in {by_name.get(r.lower(), next(iter(dovecot.users))) for r in rcpts}:
            dovecot.append(raw, "INBOX", user=user)

    def _file_sent(self, data: bytes) -> None:
        dovecot = self.files_sent
        assert dovecot is not None
        dovecot.append(data, mailbox_name(dovecot.special_use["\\Sent"]), flags=[b"\\Seen"])

    def _spool(self, captured: Captured) -> None:
        with self._cond:
            self._spooled += 1
            n = self._spooled
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        final = self.spool_dir / f"{n:06d}-{int(captured.received_at * 1000)}.eml"
        tmp = final.with_suffix(".tmp")
        tmp.write_bytes(captured.data)
        tmp.rename(final)  # a watcher never sees half a file

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._controller is not None:
            return
        for attempt in range(5):
            # A new Controller each time: aiosmtpd closes its event loop on stop.
            controller = Controller(
                self, hostname=self.host, port=self.port, data_size_limit=50 * 1024 * 1024,
                enable_SMTPUTF8=self.smtputf8,
            )
            try:
                controller.start()
            except OSError as e:
                # The port was free when chosen and taken before aiosmtpd bound it (CI saw it twice in
                # 60 sinks started two at a time). Before the first start nobody knows the port yet, so
                # take another; once started, a restart keeps its port, as a real server would.
                if e.errno != errno.EADDRINUSE or self._started or attempt == 4:
                    raise
                print(f"smtp_sink: port {self.port} taken before it was bound "
                      f"({_holders(self.port)}); trying another", file=sys.stderr)
                self.port = free_port()
                continue
            break
        self._controller = controller
        self._started = True

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
