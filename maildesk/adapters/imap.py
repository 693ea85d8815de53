"""The support inbox over IMAP (imapclient): connect, wait (IDLE or poll),
fetch in batches, and move handled mail out of the way.

Reading uses BODY.PEEK[] so nothing is marked \\Seen; in read-only mode
nothing is moved or flagged at all. Errors come out as the few exception
types of imap_types.py, which the daemon knows how to handle.

A message above `[mailbox] max_message_mb` is never fetched whole: its
BODYSTRUCTURE and header come first, then the parts core/fetchplan.py chooses.
The original stays whole in the mailbox. The other folders (Sent, spam) are
read by imap_folders.py; the login is adapters/connect.py's, shared with `check`.
"""
from __future__ import annotations

import imaplib
import ssl
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterator

from maildesk.adapters import connect
from maildesk.adapters.imap_folders import OtherFolders
from maildesk.adapters.imap_types import (BATCH, NETWORK_ERRORS, ConnectionLost, Fetched, FolderMissing,
                                          LoginRefused, Refused, Unfetchable, envelope_subject, folder_problem,
                                          text)
from maildesk.core import fetchplan
from maildesk.core.fetchplan import EDGE
from maildesk.logs import event as log_event
from maildesk.inbound.attachments import Attachment, describe_part

if TYPE_CHECKING:
    import imapclient

FETCH_BYTES = 8 * 1024 * 1024  # one FETCH of whole messages brings at most this much (or one message)


class _Unreadable(Exception):
    """The server will not give a large message part by part: read its first bytes instead."""


class Inbox(OtherFolders):
    def __init__(self, cfg, password: str | None, token_source: Callable[[], str] | None = None,
                 attachment_max_bytes: int | None = None, part_fetch=None):
        self.cfg = cfg  # MailboxConfig
        self.password = password
        self.token_source = token_source
        # FETCH of one message's items, for reading a large one part by part: (client, uid, items) -> answer
        self.part_fetch = part_fetch or _fetch_one
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
        try:
            client = connect.imap_client(c, self.password, self.token_source)  # TokenError: LoginRefused
        except ssl.SSLCertVerificationError as e:
            raise ConnectionLost(f"the TLS certificate of IMAP server {c.host}:{c.port} cannot be verified "
                                 f"({e.verify_message}); maildesk never connects without verifying it: "
                                 "check the host name, or give the server a valid certificate") from None
        except NETWORK_ERRORS as e:
            if connect.imap_login_refused(e):
                raise LoginRefused(f"IMAP login refused for {c.username}: {text(e)}") from None
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
            raise FolderMissing(folder_problem(c.folder, "mailbox.folder", text(e), names)) from None
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
            raise Refused(text(e)[:200]) from None

    def _unfetchable(self, uid: int, reason: str, meta) -> Unfetchable:
        """What the server still says about a message it will not serve: its size and subject."""
        size, subject = meta.get(b"RFC822.SIZE", 0), ""
        try:
            answer = self._fetch_or_refuse([uid], ["RFC822.SIZE", "ENVELOPE"]).get(uid, {})
            size = answer.get(b"RFC822.SIZE", size)
            envelope = answer.get(b"ENVELOPE")
            if envelope is not None and envelope.subject:
                subject = envelope_subject(envelope.subject)
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
            log_event("large_message_unreadable", severity=30, uid=uid, size=size, exc_info=True)
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
        """A large message rebuilt from its header and the parts that fit (core/fetchplan.py
        chooses them). None: it cannot be read that way."""
        answer = self._fetch_items(uid, ["BODYSTRUCTURE", f"BODY.PEEK[HEADER]<0.{max_bytes}>"])
        structure = answer.get(b"BODYSTRUCTURE")
        header = next((v for k, v in answer.items() if k.startswith(b"BODY[HEADER]")), None)
        if structure is None or not isinstance(header, bytes) or not header.strip():
            return None
        header = header.rstrip(b"\r\n") + b"\r\n"
        leaves = fetchplan.leaves(structure)
        multipart = fetchplan.is_multipart(structure)
        sep = fetchplan.boundary(structure)
        if not leaves or (multipart and sep is None):
            return None
        mime = self._part_headers(uid, [s for s, _ in leaves]) if multipart else {"1": header}
        parts = []
        for index, (section, body) in enumerate(leaves, start=1):
            name, ctype, is_text = describe_part(mime[section], index)
            parts.append(fetchplan.part(section, body, name, ctype, is_text, len(mime[section])))
        limit = self.attachment_max_bytes if self.attachment_max_bytes is not None else max_bytes
        chosen = fetchplan.plan(parts, max_bytes, len(header), limit)
        exact = self._base64_sizes(uid, [(p.section, p.octets) for p in chosen.omitted if p.base64])
        omitted = tuple(Attachment(p.name, p.ctype, exact.get(p.section, p.size), None) for p in chosen.omitted)
        contents: dict[str, bytes] = {}
        wanted = [p for p in parts if chosen.take.get(p.section, 0) > 0]
        for start in range(0, len(wanted), BATCH):
            group = wanted[start:start + BATCH]
            got = self._fetch_items(uid, [f"BODY.PEEK[{p.section}]<0.{chosen.take[p.section]}>" if chosen.partial(p)
                                          else f"BODY.PEEK[{p.section}]" for p in group])
            for p in group:
                value = got.get((f"BODY[{p.section}]<0>" if chosen.partial(p) else f"BODY[{p.section}]").encode())
                contents[p.section] = value if isinstance(value, bytes) else b""
            del got
        raw = fetchplan.assemble(header, sep if multipart else None, parts, mime, contents)
        return raw, omitted, fetchplan.summary(parts, chosen, exact)

    def _part_headers(self, uid: int, sections: list[str]) -> dict[str, bytes]:
        """The parts' own headers (small): they say which are body text and what attachments are called."""
        mime: dict[str, bytes] = {}
        for start in range(0, len(sections), BATCH):
            group = sections[start:start + BATCH]
            got = self._fetch_items(uid, [f"BODY.PEEK[{s}.MIME]" for s in group])
            for s in group:
                value = got.get(f"BODY[{s}.MIME]".encode())
                mime[s] = value if isinstance(value, bytes) else b""
        return mime

    def _fetch_items(self, uid: int, items: list[str]) -> dict:
        """FETCH these items of one message. A server's NO or BAD (it cannot serve this message
        that way) raises _Unreadable and keeps the connection; connection trouble is ConnectionLost."""
        if self.client is None:
            raise ConnectionLost("not connected")
        try:
            return self.part_fetch(self.client, uid, items)
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            self.close()
            raise ConnectionLost(f"IMAP connection lost: {type(e).__name__}: {e}") from None
        except imaplib.IMAP4.error as e:  # NO, BAD, or an answer imapclient cannot parse
            raise _Unreadable(text(e)) from None

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
                size = fetchplan.base64_size(head, tail, octets)
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

    def noop(self) -> None:
        self._call(self.client.noop)


def _fetch_one(client, uid: int, items: list[str]) -> dict:
    return client.fetch([uid], items).get(uid, {})


def _news(responses) -> bool:
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
