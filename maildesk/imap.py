"""The support inbox over IMAP (imapclient): connect, wait (IDLE or poll),
fetch in batches, and move handled mail out of the way.

Reading uses BODY.PEEK[] so nothing is marked \\Seen; in read-only mode
nothing is moved or flagged at all. Errors come out as three exception
types the daemon knows how to handle.
"""
from __future__ import annotations

import imaplib
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

BATCH = 100


class MailboxError(Exception):
    """The inbox cannot be used right now."""


class LoginRefused(MailboxError):
    pass


class ConnectionLost(MailboxError):
    pass


class FolderMissing(MailboxError):
    pass


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    arrived_at: datetime
    size: int
    truncated: bool = False
    thread_id: int | None = None  # Gmail's X-GM-THRID, when the server offers X-GM-EXT-1


NETWORK_ERRORS = (OSError, socket.timeout, ssl.SSLError, imaplib.IMAP4.abort, imaplib.IMAP4.error,
                  IMAPClientError, EOFError)


class Inbox:
    def __init__(self, cfg, password: str | None, token_source: Callable[[], str] | None = None):
        self.cfg = cfg  # MailboxConfig
        self.password = password
        self.token_source = token_source
        self.client: imapclient.IMAPClient | None = None
        self.can_idle = False
        self.can_move = False
        self.gmail = False  # X-GM-EXT-1: Gmail's thread ids can be fetched
        self.seen_uid = 0  # the highest UID pending() returned: wait() looks for anything newer
        self.uidvalidity: int | None = None

    # --- connection ------------------------------------------------------------
    def connect(self) -> None:
        c = self.cfg
        token = self.token_source() if self.token_source is not None else None  # TokenError: LoginRefused
        try:
            client = imapclient.IMAPClient(c.host, port=c.port, ssl=c.security == "ssl",
                                           ssl_context=ssl.create_default_context(),
                                           timeout=c.timeout_seconds)
            if c.security == "starttls":
                client.starttls(ssl.create_default_context())
            client.normalise_times = False
            if token is not None:
                client.oauth2_login(c.username, token)
            else:
                client.login(c.username, self.password or "")
        except LoginError as e:
            raise LoginRefused(f"IMAP login refused for {c.username}: {_text(e)}") from None
        except ssl.SSLCertVerificationError as e:
            raise ConnectionLost(f"the TLS certificate of IMAP server {c.host}:{c.port} cannot be verified "
                                 f"({e.verify_message}); maildesk never connects without verifying it: "
                                 "check the host name, or give the server a valid certificate") from None
        except NETWORK_ERRORS as e:
            raise ConnectionLost(f"cannot reach IMAP server {c.host}:{c.port}: {type(e).__name__}: {e}") from None
        self.client = client
        caps = {cap.upper() for cap in client.capabilities()}
        self.can_idle = b"IDLE" in caps
        self.can_move = b"MOVE" in caps
        self.gmail = b"X-GM-EXT-1" in caps
        self.seen_uid = 0
        try:
            if not c.read_only:
                for folder in (c.processed_folder, c.quarantine_folder):
                    if not client.folder_exists(folder):
                        client.create_folder(folder)
            info = client.select_folder(c.folder, readonly=c.read_only)
        except NETWORK_ERRORS as e:
            self.close()
            raise FolderMissing(f"IMAP folder problem ({c.folder}): {_text(e)}") from None
        self.uidvalidity = int(info.get(b"UIDVALIDITY", 0))

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # the connection may already be gone; nothing to save
                pass
            self.client = None

    def _call(self, fn, *args, **kwargs):
        if self.client is None:
            raise ConnectionLost("not connected")
        try:
            return fn(*args, **kwargs)
        except NETWORK_ERRORS as e:
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None

    # --- reading -----------------------------------------------------------------
    def pending(self, after_uid: int = 0) -> list[int]:
        """UIDs waiting in the folder (all of them: handled mail is moved away;
        in read-only mode, those above the last one seen)."""
        criteria = ["UID", f"{after_uid + 1}:*"] if after_uid else ["ALL"]
        # NOOP first: a server answers SEARCH from its last view of the folder and only then
        # announces mail that came meanwhile (Dovecot does); that news would be lost before IDLE
        # and the mail left waiting for the next wake-up, up to a minute later
        self._call(self.client.noop)
        uids = self._call(self.client.search, criteria)
        self.seen_uid = max(self.seen_uid, *uids, after_uid)
        return sorted(u for u in uids if u > after_uid)

    def fetch(self, uids: list[int], max_bytes: int) -> Iterator[Fetched]:
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            sizes = self._call(self.client.fetch, chunk,
                               ["RFC822.SIZE", "INTERNALDATE", *(["X-GM-THRID"] if self.gmail else [])])
            small = [u for u in chunk if u in sizes and sizes[u].get(b"RFC822.SIZE", 0) <= max_bytes]
            big = [u for u in chunk if u in sizes and u not in small]
            bodies = self._call(self.client.fetch, small, ["BODY.PEEK[]"]) if small else {}
            for uid in chunk:
                if uid not in sizes:
                    continue  # expunged meanwhile
                meta = sizes[uid]
                size = meta.get(b"RFC822.SIZE", 0)
                arrived = meta.get(b"INTERNALDATE") or datetime.now(timezone.utc)
                if arrived.tzinfo is None:
                    arrived = arrived.astimezone()
                if uid in bodies:
                    raw = bodies[uid].get(b"BODY[]") or b""
                    yield Fetched(uid, raw, arrived.astimezone(timezone.utc), size,
                                  thread_id=meta.get(b"X-GM-THRID"))
                elif uid in big:
                    # too big to parse in memory: keep the original in the mailbox,
                    # work from its first max_bytes
                    part = self._call(self.client.fetch, [uid], [f"BODY.PEEK[]<0.{max_bytes}>"])
                    # the answer also holds SEQ (an int); the body comes back as BODY[]<0>
                    raw = next((v for k, v in part.get(uid, {}).items() if k.startswith(b"BODY[")), b"")
                    if not isinstance(raw, bytes):
                        raw = b""
                    yield Fetched(uid, raw, arrived.astimezone(timezone.utc), size, truncated=True,
                                  thread_id=meta.get(b"X-GM-THRID"))

    # --- moving ------------------------------------------------------------------
    def move(self, uids: list[int], folder: str) -> None:
        if not uids or self.cfg.read_only:
            return
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            if self.can_move:
                self._call(self.client.move, chunk, folder)
            else:
                self._call(self.client.copy, chunk, folder)
                self._call(self.client.delete_messages, chunk)
                self._call(self.client.uid_expunge, chunk)

    # --- waiting -----------------------------------------------------------------
    def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
        """Block up to `timeout` s until new mail may be there; True if the server said so.

        IDLE is re-issued at least every `idle_renew_seconds` (Gmail drops it
        after ~10 min). Without IDLE this polls: sleep, then look again."""
        if not (self.cfg.idle and self.can_idle):
            deadline = time.monotonic() + min(timeout, self.cfg.poll_seconds)
            while not stopping() and time.monotonic() < deadline:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            return True
        end = time.monotonic() + timeout
        while not stopping() and time.monotonic() < end:
            if self._arrived():
                return True
            if self._idle_until(min(end, time.monotonic() + self.cfg.idle_renew_seconds), stopping):
                return True
        return False

    def _arrived(self) -> bool:
        """Mail newer than pending() saw? IDLE only reports changes after it starts, and news
        the server gave with an earlier answer (FETCH, MOVE) is not repeated: ask, before each IDLE."""
        self._call(self.client.noop)  # the server's view of the folder is brought up to date
        uids = self._call(self.client.search, ["UID", f"{self.seen_uid + 1}:*"])
        return any(u > self.seen_uid for u in uids)

    def _idle_until(self, deadline: float, stopping: Callable[[], bool]) -> bool:
        """One IDLE command, ended with DONE by `deadline`; True on news (also news that came with DONE)."""
        self._call(self.client.idle)
        news = False
        try:
            while not stopping() and time.monotonic() < deadline:
                responses = self._call(self.client.idle_check, timeout=min(1.0, max(0.05, deadline - time.monotonic())))
                if _news(responses):
                    news = True
                    break
        finally:
            if self.client is not None:
                _text_, late = self._call(self.client.idle_done)
                news = news or _news(late)
        return news

    def find_special(self, flag: bytes | str) -> str | None:
        """The folder with a special-use flag (\\Sent, \\All, \\Trash): Gmail's names
        ("[Gmail]/Sent Mail", "[Gmail]/Messages envoyés") depend on the account's language."""
        return self._call(self.client.find_special_folder, flag.encode() if isinstance(flag, str) else flag)

    def sent_folder_name(self) -> str | None:
        """`[mailbox] sent_folder`: a name, or "auto" to find it by its \\Sent flag
        (Gmail names it differently in every language)."""
        name = self.cfg.sent_folder
        if name and name.lower() in ("auto", "\\sent"):
            from imapclient.imapclient import SENT
            return self._call(self.client.find_special_folder, SENT)
        return name

    def read_folder(self, folder: str, after_uid: int | None, max_bytes: int) -> tuple[int, int, list[Fetched]]:
        """New messages of another folder (e.g. Sent), read-only, then back to ours.

        Returns (uidvalidity, highest uid seen, messages). With `after_uid`
        None (first look) nothing old is returned: history is not replayed."""
        info = self._call(self.client.select_folder, folder, readonly=True)
        try:
            validity = int(info.get(b"UIDVALIDITY", 0))
            uids = self._call(self.client.search, ["ALL"])
            top = max(uids, default=0)
            if after_uid is None:
                return validity, top, []
            new = sorted(u for u in uids if u > after_uid)[:BATCH]
            fetched = list(self.fetch(new, max_bytes))
            return validity, max(new, default=after_uid), fetched
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def noop(self) -> None:
        self._call(self.client.noop)


def _news(responses) -> bool:
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _text(e: Exception) -> str:
    text = str(e)
    return text.decode(errors="replace") if isinstance(text, bytes) else text
