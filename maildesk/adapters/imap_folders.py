"""The folders beside ours (Sent, spam, processed after a restore), for the Inbox: each is
opened read-only (or for one move), then the inbox's own folder is selected again."""
from __future__ import annotations

import imaplib
from datetime import date, datetime, timedelta
from email.utils import getaddresses

from maildesk.adapters.imap_types import (BATCH, NETWORK_ERRORS, ConnectionLost, Fetched, FolderMissing,
                                          Unfetchable, folder_problem, text)
from maildesk.core.addresses import mailbox_key
from maildesk.logs import event as log_event


class OtherFolders:
    """Mixed into Inbox: needs its `client`, `cfg`, `gmail`, `_call`, `close`, `fetch`, `_meta`."""

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
                self._sent_name = self._call(self.client.find_special_folder, b"\\Sent")
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
            raise FolderMissing(folder_problem(folder, "mailbox.sent_folder", text(e), names)) from None
        try:
            now_validity = int(info.get(b"UIDVALIDITY", 0))
            if after_uid is None or (validity is not None and validity != now_validity):
                return now_validity, int(info.get(b"UIDNEXT", 1)) - 1, []
            uids = self._call(self.client.search, ["UID", f"{after_uid + 1}:*"])
            new = sorted(u for u in uids if u > after_uid)[:BATCH]  # "N:*" names the last one even below N
            fetched = []
            for item in self.fetch(new, max_bytes):
                if isinstance(item, Unfetchable):  # a record of what staff sent: one lost is logged, not retried
                    log_event("sent_message_unfetchable", severity=30, folder=folder, uid=item.uid, reason=item.reason)
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
                    log_event("message_unfetchable", severity=30, folder=folder, uid=item.uid, reason=item.reason)
                else:
                    fetched.append(item)
            return fetched
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def delete_older(self, folder: str, cutoff: datetime, limit: int, chunk: int = 250) -> tuple[int, bool]:
        """Delete and expunge at most `limit` messages of `folder` that arrived (INTERNALDATE) at or
        before `cutoff`, `chunk` UIDs a command; (how many went, whether more may wait). SEARCH BEFORE
        counts in days in each message's own zone, so it is asked with two days to spare (cheap on
        the server, a few days of UIDs) and each candidate's INTERNALDATE is then compared exactly."""
        self._call(self.client.select_folder, folder)
        try:
            candidates = sorted(self._call(self.client.search, ["BEFORE", (cutoff + timedelta(days=2)).date()]))
            doomed: list[int] = []
            for start in range(0, len(candidates), BATCH * 10):
                dates = self._call(self.client.fetch, candidates[start:start + BATCH * 10], ["INTERNALDATE"])
                doomed += [u for u in candidates[start:start + BATCH * 10]
                           if u in dates and self._meta(dates[u])[1] <= cutoff]
                if len(doomed) >= limit:
                    break
            doomed = doomed[:limit]
            for start in range(0, len(doomed), chunk):
                self._expunge(doomed[start:start + chunk])
            return len(doomed), len(doomed) >= limit
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def delete_matching(self, folder: str, address: str, subjects: list[str]) -> int:
        """Delete and expunge the messages of `folder` from, to or copied to `address` (its
        headers' addresses compared exactly, not as the server's substring search does), or
        whose subject holds one of `subjects` (a complaint's reference); how many went."""
        key = mailbox_key(address)
        self._call(self.client.select_folder, folder)
        try:
            found: set[int] = set()
            for criteria in (["FROM", address], ["TO", address], ["CC", address],
                             *(["SUBJECT", s] for s in subjects)):
                found |= set(self._call(self.client.search, criteria))
            doomed = []
            for start in range(0, len(found), BATCH):
                chunk = sorted(found)[start:start + BATCH]
                got = self._call(self.client.fetch, chunk, ["BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT)]"])
                for uid, item in got.items():
                    header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                    text_ = header.decode("utf-8", "replace")
                    people = getaddresses([line.partition(":")[2] for line in text_.replace("\r\n ", " ").splitlines()
                                           if line.lower().startswith(("from:", "to:", "cc:"))])
                    if any(a and mailbox_key(a) == key for _, a in people) or any(s in text_ for s in subjects):
                        doomed.append(uid)
            if doomed:
                self._expunge(doomed)
            return len(doomed)
        finally:
            self._call(self.client.select_folder, self.cfg.folder, readonly=self.cfg.read_only)

    def _expunge(self, uids: list[int]) -> None:
        """Delete these messages of the selected folder for good. Without UIDPLUS, EXPUNGE also
        removes what another client had flagged \\Deleted there."""
        self._call(self.client.delete_messages, uids)
        if self.client.has_capability("UIDPLUS"):
            self._call(self.client.uid_expunge, uids)
        else:
            self._call(self.client.expunge)
