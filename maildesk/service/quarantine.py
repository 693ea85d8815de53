"""The quarantine folder from the command line: which message there is which
`quarantine` row (by the same SHA-256 the daemon took of what it fetched),
and moving a message back to the inbox folder for the daemon to try again."""
from __future__ import annotations

import hashlib

from maildesk.adapters.imap_types import NETWORK_ERRORS, FolderMissing
from maildesk.logs import event as log_event
from maildesk.inbound.parse import ParseError, parse
from maildesk.store import quarantine as stored


class Folder:
    """An IMAP session with the quarantine folder selected: `with Folder(app) as f:`."""

    def __init__(self, app):
        self.app = app
        self.cfg = app.cfg.mailbox
        self.inbox = None

    def __enter__(self) -> "Folder":
        inbox = self.app.make_inbox()
        inbox.connect()
        try:
            inbox.client.select_folder(self.cfg.quarantine_folder, readonly=self.cfg.read_only)
        except NETWORK_ERRORS as e:
            inbox.close()
            raise FolderMissing(f"cannot open {self.cfg.quarantine_folder}: {e}") from None
        self.inbox = inbox
        return self

    def __exit__(self, *exc) -> None:
        self.inbox.close()

    def uids(self) -> list[int]:
        return sorted(self.inbox._call(self.inbox.client.search, ["ALL"]))

    def _fetch(self, uids: list[int], progress):
        max_bytes = int(self.cfg.max_message_mb * 1024 * 1024)
        for uid in progress(uids, "quarantine"):
            yield from self.inbox.fetch([uid], max_bytes)

    def _row(self, raw: bytes):
        return stored.by_sha256(self.app.store, hashlib.sha256(raw).hexdigest())

    def list(self, progress) -> list[dict]:
        """Each message in the folder with its quarantine row, then rows still held whose message is gone."""
        out, seen = [], set()
        for fetched in self._fetch(self.uids(), progress):
            row = self._row(fetched.raw)
            if row is not None:
                seen.add(row.id)
                out.append(_item(fetched.uid, row))
            else:
                out.append(_unrecorded(fetched))
        for row in stored.still_held(self.app.store):
            if row.id not in seen:
                out.append(_item(None, row))
        return out

    def retry(self, uids: list[int], progress) -> tuple[list[int], list[int]]:
        """Move each message back to the inbox folder and mark its row `retried`."""
        moved = []
        for fetched in self._fetch(sorted(set(uids)), progress):
            row = self._row(fetched.raw)
            self.inbox.move([fetched.uid], self.cfg.folder)
            if row is not None:
                with self.app.store.transaction():
                    stored.mark_retried(self.app.store, row.id)
            moved.append(fetched.uid)
            log_event("quarantine_retried", uid=fetched.uid, row=row.id if row else None,
                      to=self.cfg.folder)
        return moved, sorted(set(uids) - set(moved))


def _item(uid, row: stored.Held) -> dict:
    return {"uid": uid, "id": row.id, "at": row.at, "status": row.status,
            "sender": row.sender, "subject": row.subject or "", "size": row.size, "reason": row.reason}


def _unrecorded(fetched) -> dict:
    sender = subject = None
    try:
        mail = parse(fetched.raw)
        sender, subject = mail.from_addr, mail.subject
    except ParseError:
        pass
    return {"uid": fetched.uid, "id": None, "at": fetched.arrived_at, "status": None, "sender": sender,
            "subject": subject or "", "size": fetched.size, "reason": None}
