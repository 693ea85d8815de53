"""Text from outside (shop names, subjects, addresses, typed arguments) as
the command line prints it: control characters, bidi overrides, invisible
format characters and undecodable bytes shown escaped (`\\x1b`, `\\u202e`),
so a value can neither drive the terminal, reorder what is around it nor
fake a line. `--json` keeps the real value, with the same characters as
JSON escapes (`dumps`)."""
from __future__ import annotations

import json
import re
import unicodedata

# Cc: C0, DEL, C1; Cf: bidi controls, zero-width and tag characters, soft hyphen;
# Cs: undecodable argv bytes (surrogateescape); Zl/Zp: line and paragraph separators.
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_NOT_ASCII = re.compile(r"[^\x00-\x7e]")


def _hidden(ch: str) -> bool:
    return unicodedata.category(ch) in _HIDDEN


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text) -> str:
    """`text` safe to print on a terminal; printable text (accents, non-breaking spaces) unchanged."""
    text = "" if text is None else str(text)
    if text.isprintable():  # the common case, in C
        return text
    return "".join(_escape(ch) if _hidden(ch) else ch for ch in text)


def _json_escape(match: re.Match) -> str:
    ch = match.group()
    if not _hidden(ch):
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def dumps(doc, default=str) -> str:
    """Indented JSON that keeps accents readable and escapes what `shown` escapes
    (json itself escapes only C0 controls when it may write UTF-8)."""
    return _NOT_ASCII.sub(_json_escape, json.dumps(doc, indent=2, ensure_ascii=False, default=default))
