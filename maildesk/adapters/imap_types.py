"""What the IMAP adapter hands out: the messages it fetched, and its few error types, which the
daemon maps to back-off (ConnectionLost, LoginRefused), a clear stop (FolderMissing) or a
message left alone (Unfetchable). Kept apart from imapclient so callers that only name them
load no IMAP library."""
from __future__ import annotations

import imaplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header

from maildesk.inbound.parse import Attachment

BATCH = 100  # UIDs in one FETCH or MOVE


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


# imapclient's own errors (IMAPClientError, LoginError) are imaplib.IMAP4.error: named without loading it
NETWORK_ERRORS = (OSError, socket.timeout, ssl.SSLError, imaplib.IMAP4.abort, imaplib.IMAP4.error, EOFError)


def folder_problem(folder: str, key: str, error: str, names: list[str]) -> str:
    offered = ", ".join(repr(n) for n in names[:30]) or "none listed"
    return (f"the IMAP server will not open the folder {folder!r} ({error}); fix {key}. "
            f"Folders the server offers: {offered}")


def text(e: Exception) -> str:
    text = str(e)
    return text.decode(errors="replace") if isinstance(text, bytes) else text


def envelope_subject(value: bytes) -> str:
    """An ENVELOPE subject (encoded-words, raw bytes) as text, for what an Unfetchable says."""
    decoded = value.decode("utf-8", errors="replace")
    try:
        return str(make_header(decode_header(decoded)))
    except Exception:  # an odd encoded-word: the raw text is good enough for an alert
        return decoded
