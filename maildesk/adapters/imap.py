"""The support inbox over IMAP (imapclient): connect, wait (IDLE or poll),
fetch in batches, and move handled mail out of the way.

Reading uses BODY.PEEK[] so nothing is marked \\Seen; in read-only mode
nothing is moved or flagged at all. Errors come out as three exception
types the daemon knows how to handle.

A message above `[mailbox] max_message_mb` is never fetched whole (parsing
costs ~8 times its size in memory): its BODYSTRUCTURE and header come first,
then only its text parts and the attachments that fit (each at most
`[storage] attachment_max_mb`, all together at most max_message_mb); the
other attachments are known by name, type and size only. The original stays
whole in the mailbox.
"""
from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable, Iterator

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from maildesk.logs import event as log_event
from maildesk.inbound.attachments import Attachment, describe_part

BATCH = 100
FETCH_BYTES = 8 * 1024 * 1024  # one FETCH of whole messages brings at most this much (or one message)
EDGE = 1024  # bytes read at each end of an attachment left on the server, to know its exact size
MAX_LEAVES = 1000  # parts of a large message looked at; a hostile one may have many more


class MailboxError(Exception):
    """The inbox cannot be used right now."""


class LoginRefused(MailboxError):
    pass


class ConnectionLost(MailboxError):
    pass


class FolderMissing(MailboxError):
    pass


class Refused(MailboxError):
    """The server answered NO or BAD to a command; the connection is still good."""


class _Unreadable(Exception):
    """The server will not give a large message part by part: read its first bytes instead."""


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    arrived_at: datetime
    size: int
    truncated: bool = False
    thread_id: int | None = None  # Gmail's X-GM-THRID, when the server offers X-GM-EXT-1
    # a large message read part by part (see above): `raw` is its header with the parts kept,
    # `omitted` the attachments not fetched (payload None), `large` what was kept, for its event
    omitted: tuple[Attachment, ...] = ()
    large: dict | None = None


@dataclass(frozen=True)
class Unfetchable:
    """A message the server refuses to serve (Gmail: "NO Some messages could not be FETCHed"),
    even alone: the daemon counts the tries and, after a few, leaves it where it is."""
    uid: int
    reason: str
    size: int = 0
    subject: str = ""


NETWORK_ERRORS = (OSError, socket.timeout, ssl.SSLError, imaplib.IMAP4.abort, imaplib.IMAP4.error,
                  IMAPClientError, EOFError)


class Inbox:
    def __init__(self, cfg, password: str | None, token_source: Callable[[], str] | None = None,
                 attachment_max_bytes: int | None = None):
        self.cfg = cfg  # MailboxConfig
        self.password = password
        self.token_source = token_source
        self.client: imapclient.IMAPClient | None = None
        self.can_idle = False
        self.can_move = False
        self.gmail = False  # X-GM-EXT-1: Gmail's thread ids can be fetched
        self.attachment_max_bytes = attachment_max_bytes  # [storage] attachment_max_mb; None: max_message_mb
        self.seen_uid = 0  # the highest UID pending() returned: wait() looks for anything newer
        self.uidvalidity: int | None = None
        self.logins = 0  # successful logins by this process, for `status` (Gmail locks out login storms)
        self.skip: set[int] = set()  # UIDs pending() leaves out: unfetchable, or left by the first start
        self._sent_name: str | None = None  # the \\Sent folder found by "auto", kept across passes

    # --- connection ------------------------------------------------------------
    def connect(self) -> None:
        c = self.cfg
        token = self.token_source() if self.token_source is not None else None  # TokenError: LoginRefused
        try:
            client = imapclient.IMAPClient(c.host, port=c.port, ssl=c.security == "ssl",
                                           ssl_context=ssl.create_default_context() if c.security == "ssl" else None,
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
        self.logins += 1
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
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None
        except NETWORK_ERRORS as e:  # NO/BAD: retrying cannot help; say what the server has instead
            names = self._folder_names()
            self.close()
            raise FolderMissing(_folder_problem(c.folder, "mailbox.folder", _text(e), names)) from None
        self.uidvalidity = int(info.get(b"UIDVALIDITY", 0))

    def _folder_names(self) -> list[str]:
        try:
            return [name for _flags, _sep, name in self.client.list_folders()]
        except Exception:  # only for the message; the folder problem is the news
            return []

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
        return sorted(u for u in uids if u > after_uid and u not in self.skip)

    def fetch(self, uids: list[int], max_bytes: int) -> Iterator[Fetched | Unfetchable]:
        """The messages, in order. Whole ones are fetched FETCH_BYTES at a time and each is let go
        once yielded; one above `max_bytes` is read part by part (`_fetch_large`). When the server
        refuses a batch (NO), its messages are asked for one by one: the one it will not serve
        comes out as Unfetchable and the others are read as usual."""
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            items = ["RFC822.SIZE", "INTERNALDATE", *(["X-GM-THRID"] if self.gmail else [])]
            sizes, refused = self._fetch_each(chunk, items)
            for uid, reason in refused.items():
                yield self._unfetchable(uid, reason, {})
            group: list[int] = []
            group_bytes = 0
            for uid in chunk:
                if uid not in sizes:
                    continue  # expunged meanwhile, or refused above
                size = sizes[uid].get(b"RFC822.SIZE", 0)
                if size > max_bytes or (group and group_bytes + size > FETCH_BYTES):
                    yield from self._fetch_whole(group, sizes)
                    group, group_bytes = [], 0
                if size > max_bytes:
                    yield self._fetch_large(uid, sizes[uid], max_bytes)
                else:
                    group.append(uid)
                    group_bytes += size
            yield from self._fetch_whole(group, sizes)

    @staticmethod
    def _meta(meta) -> tuple[int, datetime, int | None]:
        arrived = meta.get(b"INTERNALDATE") or datetime.now(timezone.utc)
        if arrived.tzinfo is None:
            arrived = arrived.astimezone()
        return meta.get(b"RFC822.SIZE", 0), arrived.astimezone(timezone.utc), meta.get(b"X-GM-THRID")

    def arrived_before(self, uids: list[int], cutoff: datetime) -> list[int]:
        """The UIDs whose INTERNALDATE (arrival in the mailbox) is before `cutoff`."""
        old = []
        for start in range(0, len(uids), BATCH * 10):
            chunk = uids[start:start + BATCH * 10]
            dates = self._call(self.client.fetch, chunk, ["INTERNALDATE"])
            old += [u for u in chunk if u in dates and self._meta(dates[u])[1] < cutoff]
        return old

    def _fetch_each(self, uids: list[int], items: list[str]) -> tuple[dict, dict[int, str]]:
        """FETCH `items` of `uids` at once; if the server refuses, one UID at a time.
        Returns (answers by UID, refusal text by UID)."""
        try:
            return self._fetch_or_refuse(uids, items), {}
        except Refused as e:
            if len(uids) == 1:
                return {}, {uids[0]: str(e)}
        answers, refused = {}, {}
        for uid in uids:
            try:
                answers.update(self._fetch_or_refuse([uid], items))
            except Refused as e:
                refused[uid] = str(e)
        return answers, refused

    def _fetch_or_refuse(self, uids: list[int], items: list[str]) -> dict:
        if self.client is None:
            raise ConnectionLost("not connected")
        try:
            return self.client.fetch(uids, items)
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:  # abort is an IMAP4.error: first
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None
        except imaplib.IMAP4.error as e:  # NO or BAD: the server will not serve this, the link is fine
            raise Refused(_text(e)[:200]) from None

    def _unfetchable(self, uid: int, reason: str, meta) -> Unfetchable:
        """What the server still says about a message it will not serve: its size and subject."""
        size, subject = meta.get(b"RFC822.SIZE", 0), ""
        try:
            answer = self._fetch_or_refuse([uid], ["RFC822.SIZE", "ENVELOPE"]).get(uid, {})
            size = answer.get(b"RFC822.SIZE", size)
            envelope = answer.get(b"ENVELOPE")
            if envelope is not None and envelope.subject:
                subject = _decode_words(envelope.subject)
        except Refused:
            pass
        return Unfetchable(uid, reason, size, subject[:200])

    def _fetch_whole(self, uids: list[int], sizes) -> Iterator[Fetched | Unfetchable]:
        if not uids:
            return
        bodies, refused = self._fetch_each(uids, ["BODY.PEEK[]"])
        for uid in uids:
            if uid in refused:
                yield self._unfetchable(uid, refused.pop(uid), sizes[uid])
                continue
            answer = bodies.pop(uid, None)
            if answer is None:
                continue  # expunged meanwhile
            size, arrived, thread = self._meta(sizes[uid])
            raw = answer.get(b"BODY[]") or b""
            del answer
            yield Fetched(uid, raw, arrived, size, thread_id=thread)
            del raw

    def _fetch_large(self, uid: int, meta, max_bytes: int) -> Fetched:
        size, arrived, thread = self._meta(meta)
        try:
            built = self._read_parts(uid, max_bytes)
        except ConnectionLost:
            raise
        except Exception:  # an odd BODYSTRUCTURE, a server refusing a part: fall back to the first bytes
            log_event("large_message_unreadable", level=30, uid=uid, size=size, exc_info=True)
            built = None
        if built is None:
            # work from its first max_bytes
            part = self._call(self.client.fetch, [uid], [f"BODY.PEEK[]<0.{max_bytes}>"])
            # the answer also holds SEQ (an int); the body comes back as BODY[]<0>
            raw = next((v for k, v in part.get(uid, {}).items() if k.startswith(b"BODY[")), b"")
            if not isinstance(raw, bytes):
                raw = b""
            return Fetched(uid, raw, arrived, size, truncated=True, thread_id=thread)
        raw, omitted, large = built
        return Fetched(uid, raw, arrived, size, truncated=large["text_truncated"], thread_id=thread,
                       omitted=omitted, large=large)

    def _read_parts(self, uid: int, max_bytes: int) -> tuple[bytes, tuple[Attachment, ...], dict] | None:
        """A large message rebuilt from its header and the parts that fit: text first, then
        attachments of at most attachment_max_bytes each, `max_bytes` in all. None: cannot."""
        answer = self._fetch_items(uid, ["BODYSTRUCTURE", f"BODY.PEEK[HEADER]<0.{max_bytes}>"])
        structure = answer.get(b"BODYSTRUCTURE")
        header = next((v for k, v in answer.items() if k.startswith(b"BODY[HEADER]")), None)
        if structure is None or not isinstance(header, bytes) or not header.strip():
            return None
        header = header.rstrip(b"\r\n") + b"\r\n"
        leaves = _leaves(structure)
        if not leaves:
            return None
        multipart = structure.is_multipart
        boundary = _param(structure[2] if multipart and len(structure) > 2 else None, b"boundary")
        if multipart and boundary is None:
            return None
        # the parts' own headers (small) say which are body text and what attachments are called
        mime: dict[str, bytes] = {}
        if multipart:
            for start in range(0, len(leaves), BATCH):
                sections = [section for section, _ in leaves[start:start + BATCH]]
                got = self._fetch_items(uid, [f"BODY.PEEK[{s}.MIME]" for s in sections])
                for s in sections:
                    value = got.get(f"BODY[{s}.MIME]".encode())
                    mime[s] = value if isinstance(value, bytes) else b""
        else:
            mime["1"] = header
        budget = max_bytes - len(header) - 4096  # 4 KB: boundaries and the like
        limit = self.attachment_max_bytes if self.attachment_max_bytes is not None else max_bytes
        parts = []  # (section, name, content type, body text?, encoded size, decoded size)
        for index, (section, body) in enumerate(leaves, start=1):
            name, ctype, is_text = describe_part(mime[section], index)
            octets = _int(body[6])
            parts.append((section, name, ctype, is_text, octets, _decoded_size(body, octets)))
        take: dict[str, int] = {}  # section -> bytes to fetch (fewer than its size: the text is cut)
        text_truncated = False
        for section, _name, _ctype, is_text, octets, _size in parts:  # the text first, whole if it fits
            if is_text:
                take[section] = max(min(octets, budget), 0)
                text_truncated = text_truncated or take[section] < octets
                budget -= take[section] + len(mime[section]) + 100
        omitted, kept = [], []
        for section, name, ctype, is_text, octets, size in parts:  # then attachments, as they fit
            if is_text:
                continue
            if size <= limit and octets + len(mime[section]) + 100 <= budget:
                take[section] = octets
                budget -= octets + len(mime[section]) + 100
                kept.append(name)  # its exact size: once parsed, in the attachments table
            else:
                omitted.append((section, name, ctype, octets, size))
        structure_of = dict(leaves)
        exact = self._base64_sizes(uid, [(s, n) for s, _name, _ct, n, _size in omitted
                                         if _encoding(structure_of[s]) == b"base64"])
        omitted = [Attachment(name, ctype, exact.get(s, size), None) for s, name, ctype, _n, size in omitted]
        octets_of = {p[0]: p[4] for p in parts}
        contents: dict[str, bytes] = {}
        wanted = [s for s, n in take.items() if n > 0]
        for start in range(0, len(wanted), BATCH):
            sections = wanted[start:start + BATCH]
            partial = {s: take[s] < octets_of[s] for s in sections}
            got = self._fetch_items(uid, [f"BODY.PEEK[{s}]<0.{take[s]}>" if partial[s] else f"BODY.PEEK[{s}]"
                                          for s in sections])
            for s in sections:
                value = got.get((f"BODY[{s}]<0>" if partial[s] else f"BODY[{s}]").encode())
                contents[s] = value if isinstance(value, bytes) else b""
            del got
        if multipart:
            sep = b"--" + boundary
            pieces = [header, b"\r\n"]
            for section, *_ in parts:
                if section in contents:
                    head = mime[section].rstrip(b"\r\n")
                    pieces += [sep, b"\r\n", head + b"\r\n\r\n" if head else b"\r\n", contents.pop(section), b"\r\n"]
            pieces += [sep, b"--\r\n"]
        else:
            if "1" in contents:
                pieces = [header, b"\r\n", contents.pop("1")]
            else:  # one big non-text body: the header without it, as an empty text
                pieces = [_without_content_fields(header), b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"]
        raw = b"".join(pieces)
        del pieces, contents
        large = {"parts": len(parts), "text_parts": sum(1 for p in parts if p[3]), "text_truncated": text_truncated}
        if kept:
            large["attachments_kept"] = kept
        if omitted:
            large["attachments_omitted"] = [{"name": a.filename, "size": a.size} for a in omitted]
        return raw, tuple(omitted), large

    def _fetch_items(self, uid: int, items: list[str]) -> dict:
        """FETCH these items of one message. A server's NO or BAD (it cannot serve this message
        that way) raises _Unreadable and keeps the connection; connection trouble is ConnectionLost."""
        if self.client is None:
            raise ConnectionLost("not connected")
        try:
            answer = self.client.fetch([uid], items)
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None
        except imaplib.IMAP4.error as e:  # NO, BAD, or an answer imapclient cannot parse
            raise _Unreadable(_text(e)) from None
        return answer.get(uid, {})

    def _base64_sizes(self, uid: int, parts: list[tuple[str, int]]) -> dict[str, int]:
        """Exact decoded sizes of base64 parts from their first and last KB: the lines between
        are all alike. (Dovecot 2.3's BINARY.SIZE is wrong for some parts; Gmail has no BINARY.)"""
        sizes: dict[str, int] = {}
        for start in range(0, len(parts), BATCH // 2):
            chunk = parts[start:start + BATCH // 2]
            items = []
            for section, octets in chunk:
                items.append(f"BODY.PEEK[{section}]<0.{EDGE}>")
                if octets > EDGE:
                    items.append(f"BODY.PEEK[{section}]<{octets - EDGE}.{EDGE}>")
            got = self._fetch_items(uid, items)
            for section, octets in chunk:
                head = got.get(f"BODY[{section}]<0>".encode())
                tail = got.get(f"BODY[{section}]<{octets - EDGE}>".encode()) if octets > EDGE else head
                size = _base64_size(head, tail, octets)
                if size is not None:
                    sizes[section] = size
        return sizes

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
        (Gmail names it differently in every language). Looked up once, not every pass."""
        name = self.cfg.sent_folder
        if name and name.lower() in ("auto", "\\sent"):
            if self._sent_name is None:
                from imapclient.imapclient import SENT
                self._sent_name = self._call(self.client.find_special_folder, SENT)
            return self._sent_name
        return name

    def sent_copies(self, message_ids: list[str]) -> set[str]:
        """Which of these Message-IDs are in the Sent folder (`[mailbox] sent_folder`, or the one
        flagged \\Sent). Gmail files there every mail its SMTP server accepted: after a crash it
        tells whether a mail in flight went out. Read-only, then back to our folder."""
        folder = self.sent_folder_name() or self.find_special(b"\\Sent")
        if not folder:
            raise FolderMissing("no Sent folder to look in: set [mailbox] sent_folder")
        self._call(self.client.select_folder, folder, readonly=True)
        try:
            found = set()
            for message_id in message_ids:
                if self.gmail:  # Gmail's own search knows the Message-ID exactly
                    criteria = ["X-GM-RAW", f"rfc822msgid:{message_id.strip('<>')}"]
                else:
                    criteria = ["HEADER", "Message-ID", message_id]
                if self._call(self.client.search, criteria):
                    found.add(message_id)
            return found
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def read_folder(self, folder: str, after_uid: int | None, max_bytes: int,
                    validity: int | None = None) -> tuple[int, int, list[Fetched]]:
        """New messages of another folder (e.g. Sent), read-only, then back to ours.

        Returns (uidvalidity, highest uid seen, messages). Only UIDs above `after_uid` are
        asked for (a year of Sent is ~160,000 messages; Gmail allows ~2,500 MB of IMAP a day).
        With `after_uid` None (first look), or a UIDVALIDITY other than `validity` (the folder
        was rebuilt), nothing old is returned: history is not replayed, reading starts at UIDNEXT."""
        try:
            info = self.client.select_folder(folder, readonly=True)
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None
        except NETWORK_ERRORS as e:
            names = self._folder_names()
            self._sent_name = None
            self.close()
            raise FolderMissing(_folder_problem(folder, "mailbox.sent_folder", _text(e), names)) from None
        try:
            now_validity = int(info.get(b"UIDVALIDITY", 0))
            if after_uid is None or (validity is not None and validity != now_validity):
                return now_validity, int(info.get(b"UIDNEXT", 1)) - 1, []
            uids = self._call(self.client.search, ["UID", f"{after_uid + 1}:*"])
            new = sorted(u for u in uids if u > after_uid)[:BATCH]  # "N:*" names the last one even below N
            fetched = []
            for item in self.fetch(new, max_bytes):
                if isinstance(item, Unfetchable):  # a record of what staff sent: one lost is logged, not retried
                    log_event("sent_message_unfetchable", level=30, folder=folder, uid=item.uid, reason=item.reason)
                else:
                    fetched.append(item)
            return now_validity, max(new, default=after_uid), fetched
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def junk_folder_name(self) -> str | None:
        """`[mailbox] junk_folder`: a name, "auto" for the folder flagged \\Junk (Gmail:
        "[Gmail]/Spam", in the account's language), or "" for none."""
        name = self.cfg.junk_folder
        if name.lower() in ("auto", "\\junk"):
            return self._call(self.client.find_special_folder, b"\\Junk")
        return name or None

    def read_headers(self, folder: str, known: set[int], validity: int | None
                     ) -> tuple[int, list[int], list[tuple[int, bytes, datetime]]]:
        """(UIDVALIDITY, every UID, (uid, header, arrival) of those not `known`) of `folder`,
        read-only, then back to ours. Only headers, and only of new messages: spam is kept 30
        days and this runs every pass (Gmail allows ~2,500 MB of IMAP a day)."""
        info = self._call(self.client.select_folder, folder, readonly=True)
        try:
            now_validity = int(info.get(b"UIDVALIDITY", 0))
            if now_validity != validity:
                known = set()
            uids = self._call(self.client.search, ["ALL"])
            new = [u for u in uids if u not in known]
            out = []
            for start in range(0, len(new), BATCH):
                chunk = new[start:start + BATCH]
                got = self._call(self.client.fetch, chunk, ["INTERNALDATE", "BODY.PEEK[HEADER]"])
                for uid in chunk:
                    if uid in got:
                        out.append((uid, got[uid].get(b"BODY[HEADER]") or b"", self._meta(got[uid])[1]))
            return now_validity, uids, out
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def move_from(self, folder: str, uids: list[int], destination: str) -> None:
        """Move messages of another folder (e.g. spam) to `destination`, then back to ours."""
        if not uids:
            return
        self._call(self.client.select_folder, folder)
        try:
            if self.can_move:
                self._call(self.client.move, uids, destination)
            else:
                self._call(self.client.copy, uids, destination)
                self._call(self.client.delete_messages, uids)
                self._call(self.client.uid_expunge, uids)
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def read_since(self, folder: str, since: date, max_bytes: int) -> list[Fetched]:
        """Every message of `folder` that arrived on or after `since` (SEARCH SINCE counts in
        days), read-only, then back to ours: after a restore, the mail handled since the backup."""
        self._call(self.client.select_folder, folder, readonly=True)
        try:
            uids = sorted(self._call(self.client.search, ["SINCE", since]))
            fetched = []
            for item in self.fetch(uids, max_bytes):
                if isinstance(item, Unfetchable):  # the server will not serve it: it cannot be handled again
                    log_event("message_unfetchable", level=30, folder=folder, uid=item.uid, reason=item.reason)
                else:
                    fetched.append(item)
            return fetched
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def noop(self) -> None:
        self._call(self.client.noop)


def _leaves(structure, prefix: str = "") -> list[tuple[str, tuple]]:
    """(section, BODYSTRUCTURE of the part) for each leaf, in order; an attached message is
    one leaf (its insides are never the sender's words)."""
    out: list[tuple[str, tuple]] = []
    stack = [(structure, prefix)]
    while stack and len(out) < MAX_LEAVES:
        body, section = stack.pop()
        if isinstance(body, (list, tuple)) and body and isinstance(body[0], list):
            children = [(part, f"{section}.{i}" if section else str(i)) for i, part in enumerate(body[0], start=1)]
            stack.extend(reversed(children))
        elif isinstance(body, (list, tuple)) and len(body) > 6:
            out.append((section or "1", body))
    return out


def _param(params, name: bytes) -> bytes | None:
    if not isinstance(params, (list, tuple)):
        return None
    for key, value in zip(params[::2], params[1::2]):
        if isinstance(key, bytes) and key.lower() == name and isinstance(value, bytes) and value:
            return value
    return None


def _int(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _encoding(body) -> bytes:
    return body[5].lower() if len(body) > 5 and isinstance(body[5], bytes) else b""


def _decoded_size(body, octets: int) -> int:
    """A part's size once decoded, estimated from its encoded size: base64 carries 57 bytes on
    each 78-byte line (76 characters and CRLF); quoted-printable at most its size."""
    return octets * 57 // 78 if _encoding(body) == b"base64" else octets


_B64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}\Z")


def _base64_size(head, tail, octets: int) -> int | None:
    """The decoded size of a base64 body of `octets` bytes from its first and last bytes, when
    its lines are regular (all but the last of one length, CRLF after each); None otherwise."""
    if not isinstance(head, bytes) or not isinstance(tail, bytes) or not head:
        return None
    if octets <= len(head):  # the whole of it
        chars = b"".join(head.split())
        if len(chars) % 4 or not _B64.match(chars):
            return None
        return len(chars) // 4 * 3 - (len(chars) - len(chars.rstrip(b"=")))
    width = head.find(b"\r\n")
    body = tail.rstrip(b"\r\n")
    cut = body.rfind(b"\r\n")
    if width <= 0 or width % 4 or cut < 0:
        return None
    last = body[cut + 2:]
    before = octets - (len(tail) - len(body)) - len(last)  # the full lines, each with its CRLF
    if before % (width + 2) or len(last) > width or not _B64.match(head[:width]) or not _B64.match(last):
        return None
    chars = before // (width + 2) * width + len(last)
    if chars % 4:
        return None
    return chars // 4 * 3 - (len(last) - len(last.rstrip(b"=")))


def _without_content_fields(header: bytes) -> bytes:
    """The header without its Content-* fields (folded lines included)."""
    out, skipping = [], False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.lower().startswith(b"content-")
        if not skipping:
            out.append(line)
    return b"".join(out)


def _folder_problem(folder: str, key: str, error: str, names: list[str]) -> str:
    offered = ", ".join(repr(n) for n in names[:30]) or "none listed"
    return (f"the IMAP server will not open the folder {folder!r} ({error}); fix {key}. "
            f"Folders the server offers: {offered}")


def _decode_words(value: bytes) -> str:
    """An ENVELOPE subject (encoded-words, raw bytes) as text."""
    from email.header import decode_header, make_header
    text = value.decode("utf-8", errors="replace")
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # an odd encoded-word: the raw text is good enough for an alert
        return text


def _news(responses) -> bool:
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _text(e: Exception) -> str:
    text = str(e)
    return text.decode(errors="replace") if isinstance(text, bytes) else text
