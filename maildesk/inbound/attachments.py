"""What an attachment is called and whether a part is body text, from the part's headers:
the same answer for a part walked in full (mime.py) and for one a large message's fetch
plan leaves on the server (adapters/imap.py)."""

from __future__ import annotations

import email
import email.message
import re
import unicodedata
from dataclasses import dataclass, field

from maildesk.inbound.decode import decode_words, unsurrogate


@dataclass(frozen=True)
class Attachment:
    """A file as it came. `payload` None: left on the server (a large message's fetch plan).
    `content_id`/`inline`: an image the sender's HTML shows in place (a signature's logo, a photo
    pasted into the text). `problem`: what is wrong with it (bad base64, a zero-byte file, a type
    its bytes deny): it is stored and listed as it came all the same."""
    filename: str
    content_type: str
    size: int
    payload: bytes | None = field(repr=False)
    content_id: str | None = None
    inline: bool = False
    problem: str | None = None


_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/rfc822-headers": ".txt",
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/feedback-report": ".txt",
    "message/disposition-notification": ".txt",
}


def safe_filename(name, index: int, ctype: str) -> str:
    """A filename safe to show and store: basename only, no controls, never empty."""
    if name and isinstance(name, str):
        name = decode_words(unsurrogate(name))
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029")
        name = re.sub(r'[<>:"|?*]', "_", " ".join(name.split())).strip(" .")
        if len(name) > 200:
            stem, dot, ext = name.rpartition(".")
            name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    else:
        name = ""
    return name or f"attachment-{index}{_EXTENSIONS.get(ctype, '.bin')}"


def filename(part: email.message.Message) -> str | None:
    """The declared filename with raw 8-bit bytes decoded, not replaced by U+FFFD."""
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name and "\ufffd" in name:
        # compat32 turns undeclared 8-bit header bytes into U+FFFD; re-read
        # the parameters from the raw headers once the bytes are decoded.
        tmp = email.message.Message()
        for key, value in part.raw_items():
            if key.lower() in ("content-disposition", "content-type"):
                tmp.set_raw(key, unsurrogate(str(value)))
        try:
            name = tmp.get_filename() or name
        except Exception:
            pass
    return name


def is_body_text(ctype: str, disposition: str | None, name: str | None) -> bool:
    """Text or HTML shown inline without a file name is the sender's words; anything else is attached."""
    return ctype in ("text/plain", "text/html") and disposition != "attachment" and not name


def describe_part(mime_header: bytes, index: int) -> tuple[str, str, bool]:
    """(safe filename, content type, is body text) of a MIME part known by its header alone:
    the parts of a large message that are not fetched (imap.py). Decided as mime.walk does."""
    try:
        part = email.message_from_bytes(mime_header.rstrip(b"\r\n") + b"\r\n\r\n")
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
    except Exception:
        return safe_filename(None, index, "application/octet-stream"), "application/octet-stream", False
    name = filename(part)
    return safe_filename(name, index, ctype), ctype, is_body_text(ctype, disposition, name)
