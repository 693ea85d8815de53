"""Which stored files an outgoing mail may carry, decided before it is queued: the sending server's
limits (`[attachments]`, Gmail's by default) are known in advance, never learned from a bounce.

Gmail refuses a whole message over 25 MB after encoding, and any message carrying a blocked file type,
also inside an archive (support.google.com/mail/answer/6590). What may not go is held: stored, and
listed in the mail by name and size with how to get it (`maildesk attachment REF N`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

HEADERS_PER_FILE = 400  # a part's boundary and headers (type, disposition, name, Content-ID)
MESSAGE_HEADERS = 4096  # the mail's own header block, generously


@dataclass(frozen=True)
class Candidate:
    """A file a mail would carry. `key`: the caller's handle, given back in the packing. `kept`: its
    bytes are stored. `inner`: the names inside it when it is an archive; `unreadable`: why part of an
    archive could not be looked into (inbound/archives.py)."""
    key: object
    filename: str
    size: int
    kept: bool = True
    inner: tuple[str, ...] = ()
    unreadable: str | None = None


@dataclass(frozen=True)
class Held:
    """A file that stays behind. `reason`: "blocked" (its type, or a name inside it: `name`),
    "unreadable" (an archive whose content cannot be checked: `name` says why), "too_big" (over the
    whole mail's limit alone), "no_room" (the mail is full), "not_kept" (the bytes were never stored)."""
    key: object
    reason: str
    name: str = ""


@dataclass
class Packing:
    attached: list = field(default_factory=list)  # keys, in the order given
    held: list[Held] = field(default_factory=list)


def encoded_size(size: int) -> int:
    """Bytes a file takes in a mail: base64 (4 for 3) in lines of 76 characters plus CRLF."""
    b64 = 4 * ((size + 2) // 3)
    return b64 + 2 * ((b64 + 75) // 76)


def blocked_suffix(name: str, blocked: Sequence[str]) -> str | None:
    """The blocked suffix `name` ends with (".exe"), or None. Case and trailing dots or spaces ignored
    (Windows drops them: "facture.pdf.exe. " runs as an .exe)."""
    lowered = name.lower().rstrip(". ")
    base = lowered.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in blocked:
        if base.endswith(suffix.lower()):
            return suffix.lower()
    return None


def refusal(c: Candidate, blocked: Sequence[str]) -> Held | None:
    """Why the server would refuse a mail carrying this file, whatever its size; None if it would not."""
    if blocked_suffix(c.filename, blocked):
        return Held(c.key, "blocked", c.filename)
    for name in c.inner:
        if blocked_suffix(name, blocked):
            return Held(c.key, "blocked", name)
    if c.unreadable:
        return Held(c.key, "unreadable", c.unreadable)
    return None


def pack(files: Sequence[Candidate], *, max_message_bytes: int, text_bytes: int,
         blocked: Sequence[str]) -> Packing:
    """Attach what may go, in the order given, while the whole mail stays under `max_message_bytes`;
    hold the rest with its reason. `text_bytes`: the mail's own text (and HTML) as they will be sent."""
    out = Packing()
    room = max_message_bytes - MESSAGE_HEADERS - text_bytes
    for c in files:
        if not c.kept:
            out.held.append(Held(c.key, "not_kept"))
            continue
        refused = refusal(c, blocked)
        if refused:
            out.held.append(refused)
            continue
        cost = encoded_size(c.size) + HEADERS_PER_FILE
        if cost > max_message_bytes - MESSAGE_HEADERS - text_bytes:
            out.held.append(Held(c.key, "too_big"))
        elif cost > room:
            out.held.append(Held(c.key, "no_room"))
        else:
            out.attached.append(c.key)
            room -= cost
    return out
