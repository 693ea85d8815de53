"""Attachments and the files they name. A file's bytes live once in `files`, keyed by their
SHA-256, however many mails carry it (the same photo sent three times is one row); an
attachment row says which message carried which file, under what name and type."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from maildesk.store.db import Store


@dataclass(frozen=True)
class StoredFile:
    """One attachment of a complaint. `number`: its place among the complaint's files (1, 2, ...),
    what `maildesk attachment REF N` and the mails name it by. `sha256` None: not kept (left on
    the server, or over `[storage] attachment_max_mb`). `source`: the message's kind
    (customer, staff, note, seller, ...); `direction` "in" or "out"."""
    id: int
    number: int
    message_row: int
    filename: str
    content_type: str
    size: int
    sha256: str | None
    content_id: str | None
    inline: bool
    problem: str | None
    not_kept: str | None  # why sha256 is None: 'over_limit', 'on_server' (None for files from before)
    source: str
    direction: str
    sender: str | None
    at: str

    @property
    def kept(self) -> bool:
        return self.sha256 is not None


def save(store: Store, message_row: int, att, max_bytes: int) -> int:
    """Store one attachment of an inbound message (inbound.attachments.Attachment); its bytes
    once, unless not fetched or over `max_bytes` (then listed by name and size only)."""
    digest, not_kept = None, None
    if att.payload is None:
        not_kept = "on_server"
    elif att.size > max_bytes:
        not_kept = "over_limit"
    else:
        digest = hashlib.sha256(att.payload).hexdigest()
        store.conn.execute("INSERT OR IGNORE INTO files(sha256, size, content) VALUES (?, ?, ?)",
                           (digest, len(att.payload), att.payload))
    return store.insert("attachments", {
        "message_row": message_row, "filename": att.filename, "content_type": att.content_type,
        "size": att.size, "sha256": digest, "content_id": att.content_id, "inline": int(att.inline),
        "problem": att.problem, "not_kept": not_kept})


_SELECT = ("SELECT a.id, a.message_row, a.filename, coalesce(a.content_type, 'application/octet-stream') AS ctype, "
           "a.size, a.sha256, a.content_id, a.inline, a.problem, a.not_kept, m.kind, m.direction, m.from_addr, m.at "
           "FROM attachments a JOIN messages m ON m.id = a.message_row ")


def of_complaint(store: Store, complaint_id: int) -> list[StoredFile]:
    """Every file the complaint's messages carried, numbered in the order they came."""
    rows = store.all(_SELECT + "WHERE m.complaint_id = ? ORDER BY m.at, m.id, a.id", complaint_id)
    return [_file(r, n) for n, r in enumerate(rows, start=1)]


def of_message(store: Store, complaint_id: int | None, message_row: int) -> list[StoredFile]:
    """The files one message carried, numbered as among its complaint's files."""
    if complaint_id is None:
        rows = store.all(_SELECT + "WHERE a.message_row = ? ORDER BY a.id", message_row)
        return [_file(r, n) for n, r in enumerate(rows, start=1)]
    return [f for f in of_complaint(store, complaint_id) if f.message_row == message_row]


def content(store: Store, f: StoredFile) -> bytes | None:
    """The file's bytes, or None when they were not kept."""
    if f.sha256 is None:
        return None
    return store.scalar("SELECT content FROM files WHERE sha256 = ?", f.sha256)


def _file(r, number: int) -> StoredFile:
    return StoredFile(id=r["id"], number=number, message_row=r["message_row"], filename=r["filename"],
                      content_type=r["ctype"], size=r["size"], sha256=r["sha256"], content_id=r["content_id"],
                      inline=bool(r["inline"]), problem=r["problem"], not_kept=r["not_kept"], source=r["kind"],
                      direction=r["direction"], sender=r["from_addr"], at=r["at"])


def message_raw(store: Store, message_row: int) -> bytes | None:
    """The stored message as it came (its HTML says which inline images it shows)."""
    return store.scalar("SELECT raw FROM messages WHERE id = ?", message_row)
