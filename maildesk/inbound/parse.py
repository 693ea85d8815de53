"""Raw RFC 5322 bytes -> an immutable :class:`InboundMail`.

Pure: no network, no database, no files, no complaint logic.  The daemon must
never lose a mail because parsing failed, so :func:`parse` raises nothing but
:class:`ParseError`, and only for input that is not usable e-mail at all.

Division of labour: the stdlib ``email`` package (compat32) parses the MIME
tree once; mail-parser is given only the address and Date headers, where its
forgiving address scanner and date parser are good, and never sees payloads
(it would re-encode every attachment to base64 and mix the text of attached
messages into the body).  Bodies, attachments, charsets and RFC 2047 words are
decoded here because real-world mail lies about all of them.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.generator
import email.message
import email.parser
import email.utils
import functools
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

import html2text
import mailparser
from charset_normalizer import from_bytes as _detect_charset

__all__ = [
    "Attachment",
    "InboundMail",
    "ParseError",
    "parse",
    "detect_language",
    "strip_quoted",
    "find_order_number",
    "describe_part",
]

MAX_SUBJECT = 500
MAX_NAME = 200
MAX_PARTS = 1000  # a MIME tree bigger than this is hostile; the rest is ignored
MAX_REFERENCES = 200
MAX_ADDRESS_HEADER = 16_000  # chars of an address header given to mail-parser
MAX_HTML_TO_TEXT = 2_000_000  # chars of HTML converted; beyond that html2text gets slow
MAX_HTML_NESTING_TAGS = 2000  # more quote/list tags than this and they are dropped
MAX_SCAN = 200_000  # chars of text searched for order numbers / bounce ids


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class InboundMail:
    message_id: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: str | None
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    # Bodies and headers stay out of repr() so logging a mail leaks no content.
    text: str = field(repr=False)
    reply_text: str = field(repr=False)
    html: str | None = field(repr=False)
    attachments: tuple[Attachment, ...]
    language: str
    auto_reason: str | None
    bounce_of: tuple[str, ...]
    auth_results: tuple[str, ...] = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    defects: tuple[str, ...]
    size: int
    order_number: str | None
    # What was read by guessing (unknown charsets, undeclared 8-bit headers): worth a note on the complaint.
    notes: tuple[str, ...] = ()
    # An abuse feedback report (ARF, Hotmail JMRP): its Feedback-Type, e.g. "abuse"; bounce_of names our mail.
    feedback: str | None = None
    # Bcc: only a sender's own copy has it (the Sent folder), where it counts against the sending limit.
    bcc: tuple[str, ...] = ()


class ParseError(Exception):
    """The input is not a usable e-mail; ``reason`` says why in one line."""

    def __init__(self, reason: str):
        reason = " ".join(str(reason).split())[:300] or "unparseable message"
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------ regexes etc.

_SURROGATE = re.compile("[\udc80-\udcff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
# C0/C1 controls and bidi overrides: they break logs and can disguise text.
_CTRL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
_CTRL_BODY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")
_WS = re.compile(r"\s+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*?)\?=")
_B64_JUNK_KEEP_PAD = re.compile(rb"[^A-Za-z0-9+/=]")
_B64_PAD_RUN = re.compile(rb"=+")
_MSGID = re.compile(r"<([^<>]{1,900})>")
_NEWLINES = re.compile(r"\r\n?")

_CHARSET_ALIASES = {
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    # Browsers and mail clients treat these labels as windows-1252, and so do
    # senders: 0x80-0x9f bytes (e.g. the euro sign) are common in "latin-1".
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso_8859-1": "cp1252",
    "windows-1252": "cp1252",
    # No real information: decode like an undeclared body.
    "us-ascii": None,
    "ascii": None,
    "ansi_x3.4-1968": None,
    "unknown-8bit": None,
    "x-unknown": None,
    "x-user-defined": None,
    "default": None,
}
# Codecs that are not a charset of text (names as codecs.lookup() spells them).
_FORBIDDEN_CODECS = {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem"}
_NO_INFO = {"us-ascii", "ascii", "ansi_x3.4-1968"}  # declared, but says nothing about 8-bit bytes
# Charsets whose ASCII-only bytes are not ASCII text (ISO-2022-JP is 7-bit).
_SEVEN_BIT_CODECS = ("iso2022", "utf-7", "utf-16", "utf-32", "hz")
_LATIN_CODECS = {"cp1252", "latin-1", "iso8859-1", "iso8859-15", "ascii"}

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

_REPORT_PARTS = {
    "message/delivery-status": "delivery-report",
    "message/global-delivery-status": "delivery-report",
    "message/feedback-report": "feedback-report",
    "message/disposition-notification": "disposition-notification",
}


# ------------------------------------------------------------------ decoding


def _codec(charset) -> str | None:
    """A Python codec for a declared charset, or None when it tells us nothing."""
    if not charset or not isinstance(charset, str):
        return None
    cs = charset.strip().strip("\"'").lower()
    if cs in _CHARSET_ALIASES:
        cs = _CHARSET_ALIASES[cs]
        if cs is None:
            return None
    try:
        info = codecs.lookup(cs)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _FORBIDDEN_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _unusable_charset(charset, data: bytes) -> str | None:
    """A note when declared 8-bit text had to be read without its (unknown or unusable) charset."""
    if not charset or not isinstance(charset, str) or data.isascii() or _codec(charset):
        return None
    label = _one_line(charset.strip().strip("\"'"), 40)
    return None if label.lower() in _NO_INFO else f"unknown charset {label!r}: text read as UTF-8 or windows-1252"


@functools.lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """One character per byte: such a charset reads any bytes, so it cannot tell UTF-8 from itself."""
    try:
        return len(bytes(range(128, 256)).decode(codec, "replace")) == 128
    except Exception:
        return False


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few bad bytes, decoded; None when it is not UTF-8."""
    text = data.decode("utf-8", "replace")
    high = len(data) - len(data.translate(None, bytes(range(128, 256))))
    # Latin-1 text yields one U+FFFD per accented byte; UTF-8 with one bad
    # byte yields few.  Keep UTF-8 only in the second case.
    return text if text.count("\ufffd") * 4 < high else None


def _guess_8bit(data: bytes) -> str:
    """Undeclared or mislabelled bytes: UTF-8 if it mostly is, else windows-1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = _mostly_utf8(data)
    if text is not None:
        return text
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_bytes(data: bytes, charset=None) -> str:
    """Bytes -> text whatever the declared charset says; never raises, never a lone surrogate
    (UTF-7 and friends can decode to one, and nothing downstream can encode it)."""
    text = _decode_any(data, charset)
    return _ANY_SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def _decode_any(data: bytes, charset=None) -> str:
    if not data:
        return ""
    codec = _codec(charset)
    if data.isascii() and (codec is None or not codec.startswith(_SEVEN_BIT_CODECS)):
        return data.decode("ascii")
    if codec is None:
        return _guess_8bit(data)
    if codec in _LATIN_CODECS:
        # UTF-8 labelled latin-1 is the classic source of "Ã©".
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    except Exception:  # exotic codecs can raise anything
        return _guess_8bit(data)
    if codec == "utf-8":
        return _guess_8bit(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(codec, "replace")
    except Exception:
        return _guess_8bit(data)


def _detect(data: bytes) -> str | None:
    """Undeclared multi-byte text (GB2312, Shift_JIS, Big5, EUC-KR ...) by charset-normalizer, or None.

    Only asked when most 8-bit bytes come in runs, as in multi-byte charsets: French or
    German text has its accents one by one, and on a few bytes the detector's guess for
    it is worse than windows-1252 (it says cp037 for a lone 'é')."""
    high = len(data) - len(data.translate(None, bytes(range(128, 256))))
    if high < 4 or sum(len(run) for run in _HIGH_RUN.findall(data)) * 4 < high * 3:
        return None
    try:
        best = _detect_charset(data[:4096]).best()
        codec = _codec(best.encoding) if best is not None else None
        if codec is None or codec in _LATIN_CODECS or codec.startswith(("utf-16", "utf-32")):
            return None
        return data.decode(codec)
    except Exception:
        return None


def _header_bytes(data: bytes, charsets: tuple[str, ...] = (), notes: list[str] | None = None) -> str:
    """Raw 8-bit header bytes (no encoded-word): the message's own charsets first, then UTF-8,
    then a detector, windows-1252/Latin-1 last. A single-byte charset reads anything, so it
    comes after UTF-8 (UTF-8 labelled Latin-1 is the classic "Ã©")."""
    for codec in charsets:
        if not _single_byte(codec):
            try:
                return data.decode(codec)
            except Exception:
                pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for codec in charsets:
        if _single_byte(codec):
            try:
                return data.decode(codec)
            except Exception:
                pass
    text = _mostly_utf8(data)
    if text is not None:
        return text
    text = _detect(data)
    how = "guessed by charset detection"
    if text is None:
        text, how = _guess_8bit(data), "read as windows-1252 (no charset declared)"
    if notes is not None and f"8-bit header {how}" not in notes:
        notes.append(f"8-bit header {how}")
    return text


def _unsurrogate(s: str, charsets: tuple[str, ...] = (), notes: list[str] | None = None) -> str:
    """Undo the parser's surrogateescape on raw 8-bit header bytes."""
    if s.isascii() or not _SURROGATE.search(s):
        return s
    return _ANY_SURROGATE.sub("\ufffd", _header_bytes(s.encode("utf-8", "surrogateescape"), charsets, notes))


def _b64_segment(clean: bytes) -> bytes:
    rest = len(clean) % 4
    if rest == 1:
        clean = clean[:-1]
    elif rest:
        clean += b"=" * (4 - rest)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _b64_salvage(data: bytes | str) -> bytes:
    """Decode what can be decoded of broken base64 instead of dropping it.

    Handles junk characters, missing padding, a truncated last quantum and
    blocks that were padded and concatenated (binascii stops at the first '=').
    The common, valid case is decoded straight from the parser's string,
    without another copy of a large payload.
    """
    pad = "=" if isinstance(data, str) else b"="
    first_pad = data.find(pad)
    if first_pad == -1 or not data[first_pad:].strip(pad + (" \t\r\n" if pad == "=" else b" \t\r\n")):
        try:
            return binascii.a2b_base64(data)
        except (binascii.Error, ValueError):
            pass
    if isinstance(data, str):
        data = data.encode("ascii", "ignore")
    clean = _B64_JUNK_KEEP_PAD.sub(b"", data)
    return b"".join(_b64_segment(seg) for seg in _B64_PAD_RUN.split(clean) if seg)


def _decode_words(s: str, notes: list[str] | None = None) -> str:
    """RFC 2047 decoding that survives what decode_header() rejects.

    Adjacent words in the same charset are joined before decoding because
    senders split multi-byte characters across words; broken base64 keeps
    what decodes; unknown charsets fall back to a guess.  Words inside quoted
    strings are decoded too, as every mail client does.
    """
    if "=?" not in s:
        return s
    out: list[str] = []
    pos = 0
    pending_cs: str | None = None
    pending = bytearray()

    def flush():
        nonlocal pending_cs, pending
        if pending_cs is not None:
            data = bytes(pending)
            note = _unusable_charset(pending_cs, data) if notes is not None else None
            if note and note not in notes:
                notes.append(note)
            out.append(_decode_bytes(data, pending_cs))
        pending_cs, pending = None, bytearray()

    for m in _ENCODED_WORD.finditer(s):
        gap = s[pos : m.start()]
        if pending_cs is None or gap.strip():
            flush()
            out.append(gap)
        charset = m.group(1).split("*", 1)[0].lower()
        text = m.group(3)
        if m.group(2) in "bB":
            data = _b64_salvage(text.encode("ascii", "ignore"))
        else:
            data = binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)
        if pending_cs is not None and charset != pending_cs:
            flush()
        pending_cs = charset
        pending += data
        pos = m.end()
    flush()
    out.append(s[pos:])
    return "".join(out)


def _header_text(value) -> str:
    """A raw header value as readable text: 8-bit fixed, unfolded, RFC 2047 decoded."""
    if not isinstance(value, str):
        value = str(value)
    value = _unsurrogate(value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", "").replace("\n", "")
    return _decode_words(value)


def _one_line(s: str, limit: int) -> str:
    """Header text safe for a single-line display: no newlines, no controls."""
    s = _WS.sub(" ", s)
    s = _CTRL_LINE.sub("", s).strip()
    return s[:limit]


def _normalize_text(s: str) -> str:
    if "\r" in s:
        s = _NEWLINES.sub("\n", s)
    s = _CTRL_BODY.sub("", s)
    return s.strip()


# ------------------------------------------------------------------ addresses


def _clean_addr(addr) -> str | None:
    """A lower-cased bare address, or None when it is not one."""
    if not addr or not isinstance(addr, str):
        return None
    addr = _unsurrogate(addr).strip().strip("<>").strip().lower()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or len(addr) > 320:
        return None
    if any(c.isspace() for c in addr) or _CTRL_LINE.search(addr) or "<" in addr or ">" in addr:
        return None
    if "@" in domain or domain.startswith(".") or domain.endswith("."):
        return None
    return addr


def _utf8_address(addr: str, raw_value: str) -> str:
    """8-bit bytes in an address are UTF-8 (RFC 6532) or nothing: a guessed
    charset would make up an address (Dovecot stores a NUL byte as 0x80,
    which windows-1252 reads as '€'). Bytes that are not UTF-8 become U+FFFD,
    which `addresses.sendable` refuses: the sender is known, not answerable."""
    if addr.isascii() or not _SURROGATE.search(raw_value):
        return addr
    if addr in raw_value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").lower():
        return addr
    return "".join(c if c.isascii() else "\ufffd" for c in addr)


def _std_addresses(value: str) -> list[tuple[str, str]]:
    """Fallback address parsing when mail-parser is unavailable or failed."""
    try:
        return email.utils.getaddresses([value])
    except Exception:
        return []


def _addr_list(pairs) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for pair in pairs or ():
        try:
            addr = _clean_addr(pair[1])
        except (IndexError, TypeError):
            continue
        if addr:
            seen.setdefault(addr, None)
    return tuple(seen)


def _display_name(name) -> str:
    if not name or not isinstance(name, str):
        return ""
    name = _decode_words(_unsurrogate(name))
    name = _one_line(name, MAX_NAME * 2).strip("\"' ")
    return name[:MAX_NAME]


def _msgids(values, limit: int | None = None) -> tuple[str, ...]:
    """Message-ids from In-Reply-To/References, in order, without duplicates."""
    seen: dict[str, None] = {}
    for value in values:
        found = _MSGID.findall(value)
        if not found:
            bare = value.strip()
            if "@" in bare and " " not in bare and len(bare) < 900:
                found = [bare]
        for raw_id in found:
            mid = _CTRL_LINE.sub("", "".join(raw_id.split()))
            if mid:
                seen.setdefault(f"<{mid}>", None)
    ids = tuple(seen)
    if limit and len(ids) > limit:
        # Keep the thread root and the most recent ancestors.
        ids = ids[:1] + ids[-(limit - 1) :]
    return ids


def _message_id(value: str | None, raw: bytes) -> str:
    if value:
        found = _MSGID.findall(value)
        candidate = found[0] if found else value
        candidate = _CTRL_LINE.sub("", "".join(candidate.split())).strip("<>")
        if candidate:
            return f"<{candidate[:900]}>"
    # Same message fetched twice must get the same id; line endings may differ
    # between IMAP (CRLF) and files (LF), so hash them normalized.
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()[:32]
    return f"<{digest}@maildesk.invalid>"


# ------------------------------------------------------------------ HTML


class _HTML2Text(html2text.HTML2Text):
    """html2text without Markdown escaping: the result is read, not rendered."""

    def handle_data(self, data, entity_char=False):
        super().handle_data(data, True)


_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
_AUTO_LINK = re.compile(r"<((?:https?|ftp)://[^<>\s]+)>")
_MD_ESCAPE = re.compile(r"\\([()\[\]])")
_MD_HEADING = re.compile(r"^#{1,6} ", re.M)
_BLANK_RUNS = re.compile(r"\n{3,}")
_NESTING_TAG = re.compile(r"(?i)</?(?:blockquote|ul|ol|dl|dd)\b[^>]{0,500}>")
_CELL_END = re.compile(r"(?i)(</t[dh]\s*>)")
_META_CHARSET = re.compile(rb"""(?i)<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""")


def _link(m: re.Match) -> str:
    label, url = m.group(1).strip(), m.group(2)
    if not label or label == url or url.startswith("mailto:"):
        return label or url
    return f"{label} ({url})"


def _html_to_text(html: str) -> str:
    """Readable text from an HTML body: links kept, no Markdown noise, no wrapping."""
    if len(html) > MAX_HTML_TO_TEXT:
        html = html[:MAX_HTML_TO_TEXT]
    if len(_NESTING_TAG.findall(html, 0, MAX_HTML_TO_TEXT)) > MAX_HTML_NESTING_TAGS:
        # html2text indents every line by its quote/list depth: thousands of
        # nested blockquotes would make the text quadratic in size.
        html = _NESTING_TAG.sub(" ", html)
    h = _HTML2Text(bodywidth=0)
    h.ignore_images = True
    h.ignore_emphasis = True
    h.ignore_mailto_links = True
    h.ignore_tables = True
    h.unicode_snob = True
    h.skip_internal_links = True
    html = _CELL_END.sub(r"\1 ", html)  # keep table cells apart ("Lampe 20 €")
    text = h.handle(html)
    text = _MD_ESCAPE.sub(r"\1", text)
    text = _MD_LINK.sub(_link, text)
    text = _AUTO_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub("", text)
    text = text.replace("\xa0", " ")
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))  # "[ \t]+$" is quadratic on long runs
    text = _BLANK_RUNS.sub("\n\n", text)
    return text


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed -> plain lines, so wrapped sentences stay whole."""
    out: list[str] = []
    buf: str | None = None
    buf_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        soft = content.endswith(" ") and content != "-- "
        if soft and delsp:
            content = content[:-1]
        if buf is not None and depth == buf_depth:
            buf += content
        else:
            if buf is not None:
                out.append(("> " * buf_depth) + buf if buf_depth else buf)
            buf, buf_depth = content, depth
        if not soft:
            out.append(("> " * buf_depth) + buf if buf_depth else buf)
            buf = None
    if buf is not None:
        out.append(("> " * buf_depth) + buf if buf_depth else buf)
    return "\n".join(out)


# ------------------------------------------------------------------ quoted history

_ATTR_START = re.compile(r"^\s*(?:on|le|am|el|il|op|em)\s", re.I)
_ATTR_END = re.compile(
    r"(?:wrote|a\s+[ée]crit|schrieb|escribi[óo]|ha\s+scritto|schreef|escreveu)\s*:\s*$", re.I
)
_ATTR_WORD = re.compile(r"wrote|[ée]crit|schrieb|escribi|scritto|schreef|escreveu", re.I)
_SEPARATOR = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original message|message d['’]origine|mail original|message original|"
    r"courriel original|forwarded message|message transf[ée]r[ée]|urspr[üu]ngliche nachricht|"
    r"weitergeleitete nachricht|mensaje original|messaggio originale)\s*[-_=*]{2,}\s*$",
    re.I,
)
_FORWARD = re.compile(
    r"^\s*(?:begin forwarded message|d[ée]but du message (?:r[ée]exp[ée]di[ée]|transf[ée]r[ée]))\s*:?\s*$",
    re.I,
)
_HB_FROM = re.compile(r"^[\s*]*(?:from|de|von|da|van)[\s*]*:[\s*]*\S", re.I)
_HB_KEY = re.compile(
    r"^[\s*]*(sent|date|to|subject|cc|envoy[ée]|[àa]|objet|gesendet|datum|an|betreff|enviado|para|"
    r"asunto|fecha|inviato|oggetto|data)[\s*]*:",
    re.I,
)
_RULE = re.compile(r"(?:[-_=]{5,}|\*(?:\s*\*){2,})\Z")  # on stripped lines: "\s*$" after "\*\s*" was quadratic


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style 'From:/Sent:/To:/Subject:' (or 'De :/Envoyé :/À :/Objet :') block."""
    if not _HB_FROM.match(lines[i]):
        return False
    keys = set()
    for line in lines[i + 1 : i + 9]:
        m = _HB_KEY.match(line)
        if m:
            keys.add(m.group(1).lower())
            if len(keys) >= 2:
                return True
    return False


def _attribution(lines: list[str], i: int) -> int:
    """Length (1-3 lines) of an 'On ... wrote:' / 'Le ... a écrit :' line group at i, else 0."""
    starts = bool(_ATTR_START.match(lines[i]))
    joined = ""
    for k in range(3 if starts else 1):
        if i + k >= len(lines) or not lines[i + k].strip() or _is_quoted(lines[i + k]) or len(lines[i + k]) > 500:
            return 0
        joined = f"{joined} {lines[i + k]}" if joined else lines[i + k]
        if _ATTR_END.search(joined):
            return k + 1
    return 0


def strip_quoted(text: str) -> str:
    """The newly written part of a reply; the whole text if nothing would remain.

    Line-based and linear so hostile bodies cannot make it slow.  '>' lines are
    dropped wherever they are (inline replies survive); an attribution line
    followed by quoted lines is dropped; an attribution, separator or mail
    header block followed by unquoted history (Outlook, HTML converted to text)
    ends the reply.  Signatures are kept: they often carry the customer's
    name, phone or shop.
    """
    if not text:
        return text
    lines = text.split("\n")
    n = len(lines)
    out: list[str] = []
    cut = False
    may_attribute = _ATTR_WORD.search(text) is not None
    i = 0
    while i < n:
        line = lines[i]
        if _is_quoted(line):
            i += 1
            continue
        if _SEPARATOR.match(line) or _FORWARD.match(line) or _header_block(lines, i):
            cut = True
            break
        k = _attribution(lines, i) if may_attribute else 0
        if k:
            j = i + k
            while j < n and not lines[j].strip():
                j += 1
            if j >= n or _is_quoted(lines[j]):
                i = j
                continue
            if _ATTR_START.match(line):
                cut = True
                break
        out.append(line)
        i += 1
    if cut:
        while out and (not out[-1].strip() or _RULE.match(out[-1].strip())):
            out.pop()
    if len(out) == n:
        return text
    reply = _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip("\n").rstrip()
    return reply if reply.strip() else text


# ------------------------------------------------------------------ language

_FR_WORDS = frozenset(
    """le la les de des du un une et est pas je j vous nous mon ma mes ce cette ces pour avec sur
    dans que qui ne plus bonjour merci cordialement commande colis reçu reçue remboursement ai été au
    aux en il elle votre vos mais ou où très bien sont avez suis c l qu toujours rien encore depuis
    car donc aussi cela ça madame monsieur svp vendeur article livraison jamais déjà leur lui notre
    nos ils sans avoir fait être bonne journée salutations""".split()
)
_EN_WORDS = frozenset(
    """the and is are was were not i you we my your this that for with to of have has it be been
    order received refund hello hi thanks thank regards please dear or what when still yet item
    package did do does can could would will at from by if never just got get there their they
    our us about which who any all so because i'm don't haven't didn't sincerely seller delivery
    shipped arrived""".split()
)
_WORD = re.compile(r"[a-zà-öø-ÿœæ']+")


def detect_language(text: str) -> str:
    """'fr' or 'en' by stop-word count; French unless English clearly wins."""
    if not text:
        return "fr"
    fr = en = 0
    for word in _WORD.findall(text[:5000].lower()):
        word = word.strip("'")
        if word in _EN_WORDS:
            en += 1
        elif word in _FR_WORDS:
            fr += 1
        elif "'" in word:
            head = word.split("'", 1)[0]
            if head in ("j", "l", "qu", "c", "n", "d", "s", "m", "t"):
                fr += 1
    return "en" if en >= 2 and en > fr else "fr"


# ------------------------------------------------------------------ order numbers

_ID = r"(?P<id>[A-Z0-9](?:[A-Z0-9-]{2,38})[A-Z0-9])(?!\w)"
_NUM = r"(?:n\s?[°º]|n[o°º]\.?|num(?:[ée]ro)?\.?|nr\.?|r[ée]f(?:[ée]rence)?\.?|#)"
# Whitespace runs are bounded: "\s*\s*" around optional parts is quadratic on
# hostile input, and real mail never puts more than a few spaces there.
_S = r"\s{0,3}"
_ORDER_PATTERNS = (
    re.compile(
        rf"(?<!\w){_NUM}{_S}(?:de\s{{1,3}}(?:la\s{{1,3}})?|d['’]{_S})?commandes?(?!\w){_S}[:#]?{_S}"
        rf"(?:{_NUM}{_S}[:#]?{_S})?{_ID}",
        re.I,
    ),
    re.compile(rf"(?<!\w)commandes?(?!\w){_S}(?:{_NUM}{_S})?[:#]?{_S}{_ID}", re.I),
    re.compile(
        rf"(?<!\w)order(?!\w){_S}(?:number|num\.?|no\.?|nr\.?|n[°º]|#|id|ref(?:erence)?)?{_S}[:#]?{_S}{_ID}",
        re.I,
    ),
)


def find_order_number(text: str) -> str | None:
    """An order number near 'commande' / 'order' (4+ chars, at least one digit)."""
    if not text:
        return None
    text = text[:MAX_SCAN]
    best: tuple[int, str] | None = None
    for pattern in _ORDER_PATTERNS:
        for m in pattern.finditer(text):
            ident = m.group("id")
            if any(c.isdigit() for c in ident):
                if best is None or m.start() < best[0]:
                    best = (m.start(), ident)
                break
    return best[1] if best else None


# ------------------------------------------------------------------ automatic mail

_DAEMON_LOCALS = {"mailerdaemon": "mailer-daemon", "maildaemon": "mailer-daemon", "postmaster": "postmaster"}
_NOREPLY = re.compile(r"^(?:no|do[-_.]?not|ne[-_.]?pas)[-_.]?r[ée]p?ly|^(?:no|do[-_.]?not|ne[-_.]?pas)[-_.]?r[ée]pondre|no[-_.]?reply$")
_SUBJECT_AUTO = re.compile(
    r"^\s*(?:automatic reply|r[ée]ponse automatique|auto[- ]?reply|auto[- ]?response|"
    r"out of office auto ?reply|automatische antwort|respuesta autom[áa]tica|risposta automatica)\s*:",
    re.I,
)
_SUBJECT_OOF = re.compile(r"^\s*(?:auto\s*:|out of (?:the )?office|absence|absent|cong[ée]s|vacation)", re.I)
_LIST_HEADERS = ("x-mailman-version", "x-mlserver", "x-ml-name", "x-beenthere", "x-ezmlm-version")
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply")


def _first(h: dict[str, list[str]], name: str) -> str | None:
    values = h.get(name)
    return values[0] if values else None


def _auto_reason(h: dict[str, list[str]], from_addr: str, subject: str, report: str | None) -> str | None:
    """Why a mail is machine-generated, strongest evidence first; None for a person.

    Every signal here is one a person's mail client does not add.  Subjects
    are only trusted when they are a client-generated prefix with a colon
    ("Automatic reply:", "Réponse automatique :"); "Absence ..." or "Out of
    office" is a plausible human subject (French "absence de remboursement")
    and only counts with X-Auto-Response-Suppress, which Outlook puts on
    ordinary mail too and so never counts alone.
    """
    if report:
        return report
    if "x-failed-recipients" in h:
        return "delivery-report"
    value = _first(h, "auto-submitted")
    if value is not None:
        token = value.split(";", 1)[0].strip().lower()
        if token and token != "no":
            return "auto-submitted: " + _one_line(token, 40)
    for name in _AUTOREPLY_HEADERS:
        value = _first(h, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return name
    value = _first(h, "precedence")
    if value is not None:
        token = value.strip().lower()
        if token in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
            return "precedence: " + token
    if "list-id" in h:
        return "list-id"
    if "list-unsubscribe" in h:
        return "list-unsubscribe"
    for name in _LIST_HEADERS:
        if name in h:
            return "mailing-list: " + name
    value = _first(h, "return-path")
    if value is not None and "".join(value.split()) == "<>":
        return "return-path: <>"
    local = from_addr.partition("@")[0]
    squashed = re.sub(r"[-_.]", "", local)
    if squashed in _DAEMON_LOCALS:
        return "sender: " + _DAEMON_LOCALS[squashed]
    if _NOREPLY.search(local):
        return "sender: no-reply"
    if _SUBJECT_AUTO.match(subject):
        return "subject: automatic reply"
    if _SUBJECT_OOF.match(subject) and "x-auto-response-suppress" in h:
        return "subject: out of office"
    return None


_FEEDBACK_TYPE = re.compile(r"[a-z][a-z0-9-]{0,30}")
# Hotmail/Outlook JMRP: "complaint about message from 203.0.113.5", the original attached.
_JMRP_SUBJECT = re.compile(r"\s*complaint about message from\b", re.I)


def _feedback_type(value) -> str:
    """RFC 5965 Feedback-Type (abuse, fraud, virus, not-spam, other), "other" when unreadable."""
    m = _FEEDBACK_TYPE.match(_header_text(value).strip().lower()) if value else None
    return m.group(0) if m else "other"


_BODY_MSGID = re.compile(r"(?im)^[ \t>]*message-id[ \t]*:[ \t]*(?:\n[ \t]+)?(<[^<>\s]{1,900}>)")


# ------------------------------------------------------------------ MIME walk


def _safe_filename(name, index: int, ctype: str) -> str:
    """A filename safe to show and store: basename only, no controls, never empty."""
    if name and isinstance(name, str):
        name = _decode_words(_unsurrogate(name))
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029")
        name = re.sub(r'[<>:"|?*]', "_", " ".join(name.split())).strip(" .")
        if len(name) > 200:
            stem, dot, ext = name.rpartition(".")
            name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    else:
        name = ""
    return name or f"attachment-{index}{_EXTENSIONS.get(ctype, '.bin')}"


def _part_charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _raw_payload(part: email.message.Message):
    """The payload as parsed: a list of parts, or text with 8-bit bytes surrogate-escaped.

    Not get_payload(): for 8-bit text it decodes by the declared charset, and raises
    for charsets such as 'idna' or 'undefined'; we decode it ourselves."""
    return getattr(part, "_payload", None)


def _part_bytes(part: email.message.Message) -> bytes:
    """Decoded payload; broken base64 keeps what decodes (stdlib returns it raw)."""
    payload = _raw_payload(part)
    try:
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    except Exception:
        cte = ""
    if cte == "base64" and isinstance(payload, str):
        return _b64_salvage(payload)
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


class _RawBytesGenerator(email.generator.BytesGenerator):
    """Writes headers as received: refolding costs ~0.7 ms a message and alters evidence."""

    def _write_headers(self, msg):
        for name, value in msg.raw_items():
            self._fp.write(f"{name}: {value}".encode("utf-8", "surrogateescape"))
            self.write(self._NL)
        self.write(self._NL)


def _serialize(part: email.message.Message) -> bytes:
    """Bytes of an attached message (or delivery-status blocks) for storage."""
    buf = io.BytesIO()
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else ():
        try:
            _RawBytesGenerator(buf, mangle_from_=False).flatten(sub, unixfrom=False)
        except Exception:
            buf.write(b"[unserializable part]\n")
    return buf.getvalue()


def _recover_multipart(part: email.message.Message) -> email.message.Message | None:
    """A multipart with a missing or wrong boundary: guess it from the body."""
    payload = _raw_payload(part)
    if not isinstance(payload, str):
        return None
    m = re.search(r"(?m)^--([^\s]{1,200})[ \t]*\r?$", payload)
    if not m:
        return None
    boundary = m.group(1)
    if boundary.endswith("--") and payload.find("--" + boundary[:-2]) == m.start():
        boundary = boundary[:-2]
    try:
        rebuilt = email.message_from_string(
            f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n' + payload
        )
    except RecursionError:
        return None
    return rebuilt if rebuilt.is_multipart() else None


def _epilogue_parts(part: email.message.Message) -> list:
    """Parts hidden in the epilogue when a nested multipart reused the outer boundary."""
    epilogue = part.epilogue
    if not epilogue or "--" not in epilogue:
        return []
    try:
        boundary = part.get_boundary()
    except Exception:
        return []
    if not boundary or ("--" + boundary) not in epilogue:
        return []
    delimiter = re.compile(r"(?m)^--" + re.escape(boundary) + r"(?:--)?[ \t]*\r?$")
    found = []
    for chunk in delimiter.split(epilogue)[1:]:
        chunk = chunk.lstrip("\r\n")
        if chunk.strip():
            try:
                found.append(email.message_from_string(chunk))
            except RecursionError:
                continue
    return found


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    report: str | None = None
    embedded_ids: list[str] = field(default_factory=list)
    header_texts: list[str] = field(default_factory=list)
    defects: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    feedback: str | None = None  # Feedback-Type of an ARF report, "abuse" for Hotmail's JMRP


def _filename(part: email.message.Message) -> str | None:
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
                tmp.set_raw(key, _unsurrogate(str(value)))
        try:
            name = tmp.get_filename() or name
        except Exception:
            pass
    return name


def _add_attachment(body: _Body, part, ctype: str, payload: bytes) -> None:
    name = _filename(part)
    index = len(body.attachments) + 1
    body.attachments.append(Attachment(_safe_filename(name, index, ctype), ctype, len(payload), payload))


def describe_part(mime_header: bytes, index: int) -> tuple[str, str, bool]:
    """(safe filename, content type, is body text) of a MIME part known by its header alone:
    the parts of a large message that are not fetched (imap.py). Decided as `_walk` does."""
    try:
        part = email.message_from_bytes(mime_header.rstrip(b"\r\n") + b"\r\n\r\n")
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
    except Exception:
        return _safe_filename(None, index, "application/octet-stream"), "application/octet-stream", False
    name = _filename(part)
    body_text = ctype in ("text/plain", "text/html") and disposition != "attachment" and not name
    return _safe_filename(name, index, ctype), ctype, body_text


def _text_of(part, ctype: str, notes: list[str] | None = None) -> str:
    data = _part_bytes(part)
    charset = _part_charset(part)
    if ctype == "text/html" and charset is None:
        m = _META_CHARSET.search(data[:4096])
        if m:
            charset = m.group(1).decode("ascii", "ignore")
    text = _decode_bytes(data, charset)
    note = _unusable_charset(charset, data)
    if note and notes is not None and note not in notes:
        notes.append(note)
    if ctype == "text/plain":
        try:
            flowed = (part.get_param("format") or "").lower() == "flowed"
            delsp = (part.get_param("delsp") or "").lower() == "yes"
        except Exception:
            flowed = delsp = False
        if flowed:
            text = _unflow(_NEWLINES.sub("\n", text), delsp)
    return text


def _walk(msg: email.message.Message) -> _Body:
    """Iterative (no recursion limit) walk sorting parts into body and attachments.

    Parts inside an attached message (message/rfc822, delivery-status ...) are
    not the sender's words: the container becomes one attachment and its
    Message-ID is kept for bounce matching.
    """
    body = _Body()
    stack: list[tuple[email.message.Message, bool]] = [(msg, False)]
    seen = 0
    while stack:
        part, inner = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            body.defects.add("TooManyParts")
            break
        for defect in getattr(part, "defects", ()) or ():
            body.defects.add(type(defect).__name__)
        try:
            ctype = part.get_content_type()
        except Exception:
            ctype = "text/plain"
        maintype = ctype.partition("/")[0]

        if part.is_multipart():
            children = part.get_payload()
            if maintype == "message":
                if not inner:
                    body.report = body.report or _REPORT_PARTS.get(ctype)
                    _add_attachment(body, part, ctype, _serialize(part))
                    for child in children:
                        if not isinstance(child, email.message.Message):
                            continue
                        if ctype == "message/rfc822":
                            mid = child.get("message-id")
                            if mid:
                                body.embedded_ids.append(_header_text(mid))
                            if child.get("x-hmxmroriginalrecipient") is not None:
                                body.feedback = body.feedback or "abuse"  # Hotmail/Outlook JMRP
                        elif ctype == "message/feedback-report":
                            body.feedback = _feedback_type(child.get("feedback-type"))
                continue  # the sender's body never lives inside an attached message
            hidden = _epilogue_parts(part)
            if hidden:
                body.defects.add("RecoveredEpiloguePart")
            for child in reversed((children if isinstance(children, list) else []) + hidden):
                if isinstance(child, email.message.Message):
                    stack.append((child, inner))
            continue

        if inner:
            continue
        if maintype == "multipart":
            rebuilt = _recover_multipart(part)
            if rebuilt is not None:
                body.defects.add("RecoveredBoundary")
                stack.append((rebuilt, False))
                continue
            ctype = "text/plain"  # no structure to be found: read it as text

        body.report = body.report or _REPORT_PARTS.get(ctype)
        try:
            disposition = part.get_content_disposition()
        except Exception:
            disposition = None
        filename = _filename(part)

        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _text_of(part, ctype, body.notes)
            if text.strip():
                (body.plain if ctype == "text/plain" else body.html).append(text)
            continue
        payload = _part_bytes(part)
        if ctype == "text/rfc822-headers" or (maintype == "message" and ctype != "message/rfc822"):
            body.header_texts.append(_decode_bytes(payload[:MAX_SCAN], _part_charset(part)))
        _add_attachment(body, part, ctype, payload)
    return body


def _declared_charsets(msg: email.message.Message) -> tuple[str, ...]:
    """The charsets the message's own parts declare, in order: raw 8-bit headers are most
    likely written in them (a GB2312 body, a GB2312 subject). Attached messages not included."""
    found: dict[str, None] = {}
    stack = [msg]
    seen = 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        codec = _codec(_part_charset(part))
        if codec and codec != "utf-8":
            found.setdefault(codec, None)
        payload = _raw_payload(part)
        if isinstance(payload, list) and not part.get_content_maintype() == "message":
            stack.extend(reversed([p for p in payload if isinstance(p, email.message.Message)]))
    return tuple(found)


# ------------------------------------------------------------------ mail-parser bridge


def _mailparser_view(index: dict[str, list[str]], defects: set[str]):
    """mail-parser over the address and Date headers only.

    It is good at recovering mailboxes from broken headers and at odd date
    formats; it is never shown payloads, so it copies none of them.
    """
    hm = email.message.Message()
    for name in ("from", "to", "cc", "reply-to", "date"):
        for value in index.get(name, ())[:1]:
            if len(value) > MAX_ADDRESS_HEADER:  # thousands of recipients: keep the first ones
                value = value[: value.rfind(",", 0, MAX_ADDRESS_HEADER) + 1 or MAX_ADDRESS_HEADER].rstrip(",")
                defects.add("AddressHeaderTruncated")
            hm.set_raw(name.title(), value)
    hm.set_payload("")
    try:
        mp = mailparser.MailParser(hm)
        result = (mp.from_, mp.to, mp.cc, mp.reply_to, mp.date)
        defects.update(str(c) for c in mp.defects_categories)
        return result
    except Exception as exc:  # mail-parser is an optimisation, not a dependency of correctness
        defects.add(f"MailParserFailed:{type(exc).__name__}")
        return None


def _parse_date(value: str | None, fallback) -> datetime | None:
    if value:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except Exception:
            dt = None
        if isinstance(dt, datetime):
            return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)
    if isinstance(fallback, datetime):
        return fallback if fallback.tzinfo is not None else fallback.replace(tzinfo=timezone.utc)
    return None


_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+?)\s*>")
_BARE_ADDR = re.compile(r"^\s*([^\s<>@,;:\"()]+@[^\s<>@,;:\"()]+)\s*$")


def _loose_addresses(value: str) -> list[tuple[str, str]]:
    """Mailboxes from unambiguous shapes only, when mail-parser found none.

    The stdlib splits "=?utf-8?q?a:b?= <x@y>" at the colon and returns junk
    addresses; an angle-addr or a lone addr-spec cannot be misread that way.
    """
    found = []
    start = 0
    for m in _ANGLE_ADDR.finditer(value):
        found.append((value[start : m.start()].strip().lstrip(",;").strip(), m.group(1)))
        start = m.end()
    if not found:
        for token in value.split(","):
            m = _BARE_ADDR.match(token)
            if m:
                found.append(("", m.group(1)))
    return found


def _from_header(raw_value: str, candidates) -> tuple[str, str, bool]:
    """(address, display name, null-sender?) or ParseError."""
    if candidates is None:  # mail-parser failed: the stdlib is all there is
        candidates = _std_addresses(raw_value)
    for name, addr in candidates:
        clean = _clean_addr(addr)
        if clean:
            return clean, _display_name(name), False
    loose = _loose_addresses(raw_value)
    if len({addr.lower() for _, addr in loose}) == 1:
        clean = _clean_addr(loose[0][1])
        if clean:
            return clean, _display_name(loose[0][0]), False
    # Bounces come from the null sender ("MAILER-DAEMON <>") or a bare local
    # part ("<MAILER-DAEMON>"): keep them, they are what bounce handling needs.
    low = raw_value.lower()
    squashed = "".join(low.split())
    if "<>" in squashed or "mailer-daemon" in low or "postmaster" in low:
        addr = "postmaster" if "postmaster" in low and "mailer-daemon" not in low else "mailer-daemon"
        name = raw_value.split("<", 1)[0] if "<" in raw_value else ""
        return addr, _display_name(name), True
    raise ParseError("unparseable From address" if raw_value.strip() else "empty From header")


# ------------------------------------------------------------------ entry point


def parse(raw: bytes) -> InboundMail:
    """Parse raw message bytes; only ParseError escapes, whatever the input."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ParseError(f"input is {type(raw).__name__}, not bytes")
    try:
        return _parse(raw)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("message structure nested too deeply") from None
    except Exception as exc:
        raise ParseError(f"internal error {type(exc).__name__}: {exc}") from exc


def _parse(raw: bytes) -> InboundMail:
    if not raw.strip():
        raise ParseError("empty message")
    data = raw
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if data[:1] in (b" ", b"\t", b"\r", b"\n"):
        data = data.lstrip(b" \t\r\n")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ParseError("not an e-mail: Outlook .msg (OLE2) file")

    defects: set[str] = set()
    try:
        msg = email.message_from_bytes(data)
        shallow = False
    except RecursionError:
        # The stdlib parser recurses once per nesting level; keep the headers
        # and read the body as text rather than losing the mail.
        msg = email.parser.BytesParser().parsebytes(data, headersonly=True)
        shallow = True
        defects.add("NestingTooDeep")

    raw_items = list(msg.raw_items())
    if not raw_items:
        raise ParseError("not an e-mail: no header section")

    charsets = _declared_charsets(msg)
    notes: list[str] = []
    headers: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}  # lower name -> unfolded, 8-bit-fixed, not RFC 2047 decoded
    decoded: dict[str, list[str]] = {}
    for name, value in raw_items:
        name = _CTRL_LINE.sub("", _unsurrogate(str(name))).strip()
        value = value if isinstance(value, str) else str(value)
        plain = _unsurrogate(value, charsets, notes)
        if "\r" in plain or "\n" in plain:
            plain = plain.replace("\r", "").replace("\n", "")
        text = _CTRL_LINE.sub(" ", _decode_words(plain, notes))
        key = name.lower()
        index.setdefault(key, []).append(plain)
        decoded.setdefault(key, []).append(text)
        headers.append((name, text))

    if "from" not in index:
        raise ParseError("no From address (From header missing)")

    view = _mailparser_view(index, defects)
    mp_from, mp_to, mp_cc, mp_reply_to, mp_date = view if view else (None, None, None, None, None)

    from_addr, from_name, null_sender = _from_header(index["from"][0], mp_from)
    from_addr = _utf8_address(from_addr, next((str(v) for n, v in raw_items if str(n).strip().lower() == "from"), ""))
    if null_sender:
        defects.add("NullFromAddress")

    def addresses(key: str, mp_value) -> tuple[str, ...]:
        if key not in index:
            return ()
        if view is None:
            return _addr_list(_std_addresses(index[key][0]))
        return _addr_list(mp_value) or _addr_list(_loose_addresses(index[key][0]))

    to = addresses("to", mp_to)
    cc = addresses("cc", mp_cc)
    bcc = addresses("bcc", None)
    reply_to_all = addresses("reply-to", mp_reply_to)
    reply_to = reply_to_all[0] if reply_to_all else None

    subject = _one_line(decoded["subject"][0], MAX_SUBJECT) if "subject" in decoded else ""
    date = _parse_date(_first(decoded, "date"), mp_date)
    if "date" in index and date is None:
        defects.add("BadDate")

    message_id_value = _first(index, "message-id")
    message_id = _message_id(message_id_value, raw)
    if not message_id_value or message_id.endswith("@maildesk.invalid>"):
        defects.add("MissingMessageId")
    in_reply_to = _msgids(index.get("in-reply-to", ()))
    references = _msgids(index.get("references", ()), MAX_REFERENCES)

    if shallow:
        body = _Body()
        text = _decode_bytes(_part_bytes(msg), _part_charset(msg))
        if text.strip():
            body.plain.append(text)
    else:
        body = _walk(msg)
    defects |= body.defects
    notes.extend(n for n in body.notes if n not in notes)
    feedback = body.feedback
    if feedback is None and _JMRP_SUBJECT.match(subject) and any(
            a.content_type == "message/rfc822" for a in body.attachments):
        feedback = "abuse"
    del msg  # the parsed tree holds the encoded payloads; drop it early

    html = "\n".join(body.html) if body.html else None
    if body.plain:
        text = _normalize_text("\n\n".join(body.plain))
    elif html:
        text = _normalize_text(_html_to_text(html))
    else:
        text = ""
    reply_text = strip_quoted(text)
    language = detect_language(reply_text)
    order_number = find_order_number(subject) or find_order_number(reply_text)
    if order_number is None and reply_text is not text:
        order_number = find_order_number(text)

    report = body.report or ("feedback-report" if feedback else None)
    if report is None and "content-type" in index:
        ctype = index["content-type"][0].lower()
        if ctype.lstrip().startswith("multipart/report"):
            report = "report"
            for marker, reason in (
                ("delivery-status", "delivery-report"),
                ("feedback-report", "feedback-report"),
                ("disposition-notification", "disposition-notification"),
            ):
                if marker in ctype:
                    report = reason
                    break
    if report == "feedback-report" and feedback is None:
        feedback = "other"
    auto_reason = _auto_reason(decoded, from_addr, subject, report)

    bounce_of: tuple[str, ...] = ()
    if auto_reason is not None:
        sources = list(body.embedded_ids)
        for chunk in body.header_texts:
            sources.extend(_BODY_MSGID.findall(_NEWLINES.sub("\n", chunk)))
        if not sources and text:
            sources.extend(_BODY_MSGID.findall(text[:MAX_SCAN]))
        bounce_of = tuple(mid for mid in _msgids(sources) if mid != message_id)

    return InboundMail(
        message_id=message_id,
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        text=text,
        reply_text=reply_text,
        html=html,
        attachments=tuple(body.attachments),
        language=language,
        auto_reason=auto_reason,
        bounce_of=bounce_of,
        auth_results=tuple(decoded.get("authentication-results", ())),
        headers=tuple(headers),
        defects=tuple(sorted(defects)),
        size=len(raw),
        order_number=order_number,
        notes=tuple(notes),
        feedback=feedback,
        bcc=bcc,
    )
