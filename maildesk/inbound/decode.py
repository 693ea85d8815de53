"""Bytes and header words -> text, whatever the mail claims its charset is.

Real-world mail lies about charsets, splits multi-byte characters across
encoded-words, breaks base64 and puts raw 8-bit bytes in headers: every
function here returns text and never raises, so a badly made mail is still read.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re

from charset_normalizer import from_bytes as _detect_charset

SURROGATE = re.compile("[\udc80-\udcff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH_RUN = re.compile(rb"[\x80-\xff]{2,}")
# C0/C1 controls and bidi overrides: they break logs and can disguise text.
CTRL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
_CTRL_BODY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")
_WS = re.compile(r"\s+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*?)\?=")
_B64_JUNK_KEEP_PAD = re.compile(rb"[^A-Za-z0-9+/=]")
_B64_PAD_RUN = re.compile(rb"=+")
NEWLINES = re.compile(r"\r\n?")

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


def codec_for(charset) -> str | None:
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


def charset_note(charset, data: bytes) -> str | None:
    """A note when declared 8-bit text had to be read without its (unknown or unusable) charset."""
    if not charset or not isinstance(charset, str) or data.isascii() or codec_for(charset):
        return None
    label = one_line(charset.strip().strip("\"'"), 40)
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


def decode_bytes(data: bytes, charset=None) -> str:
    """Bytes -> text whatever the declared charset says; never raises, never a lone surrogate
    (UTF-7 and friends can decode to one, and nothing downstream can encode it)."""
    text = _decode_any(data, charset)
    return _ANY_SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def _decode_any(data: bytes, charset=None) -> str:
    if not data:
        return ""
    codec = codec_for(charset)
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
        codec = codec_for(best.encoding) if best is not None else None
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


def unsurrogate(s: str, charsets: tuple[str, ...] = (), notes: list[str] | None = None) -> str:
    """Undo the parser's surrogateescape on raw 8-bit header bytes."""
    if s.isascii() or not SURROGATE.search(s):
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


def b64_salvage(data: bytes | str) -> bytes:
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


def decode_words(s: str, notes: list[str] | None = None) -> str:
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
            note = charset_note(pending_cs, data) if notes is not None else None
            if note and note not in notes:
                notes.append(note)
            out.append(decode_bytes(data, pending_cs))
        pending_cs, pending = None, bytearray()

    for m in _ENCODED_WORD.finditer(s):
        gap = s[pos : m.start()]
        if pending_cs is None or gap.strip():
            flush()
            out.append(gap)
        charset = m.group(1).split("*", 1)[0].lower()
        text = m.group(3)
        if m.group(2) in "bB":
            data = b64_salvage(text.encode("ascii", "ignore"))
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


def header_text(value) -> str:
    """A raw header value as readable text: 8-bit fixed, unfolded, RFC 2047 decoded."""
    if not isinstance(value, str):
        value = str(value)
    value = unsurrogate(value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", "").replace("\n", "")
    return decode_words(value)


def one_line(s: str, limit: int) -> str:
    """Header text safe for a single-line display: no newlines, no controls."""
    s = _WS.sub(" ", s)
    s = CTRL_LINE.sub("", s).strip()
    return s[:limit]


def normalize_text(s: str) -> str:
    if "\r" in s:
        s = NEWLINES.sub("\n", s)
    s = _CTRL_BODY.sub("", s)
    return s.strip()
