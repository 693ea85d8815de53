"""What an admin's search text means to SQLite FTS5, and the same meaning for PostgreSQL.

The text is first tried as FTS5 query syntax (so `colis OR paquet` and `rembours*` work);
when SQLite refuses it (a lone quote, `AND` alone, `*`, parentheses, `l'avion`, an
address), the store asks again with `plain_words()`: every token quoted, so the search
is answered as plain words and never fails on its syntax. On PostgreSQL `tsquery()` reads
the same syntax (words, "phrases", OR, NOT / -word, prefix*) into to_tsquery's, every word
quoted, so no text is a syntax error there either.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"\w", re.UNICODE)


def plain_words(text: str) -> str:
    """The text as FTS5 phrases, one per whitespace-separated token, all required;
    tokens without a letter or digit (`*`, `(`, `AND`'s neighbours) are dropped.
    "" when nothing searchable is left."""
    words = [w for w in text.split() if _TOKEN.search(w)]
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def searchable(text: str) -> bool:
    """Whether the text holds anything a search can look for."""
    return bool(plain_words(text))


_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


def _operand(text: str, prefix: bool = False) -> str:
    """One quoted to_tsquery operand; PostgreSQL's parser splits it as it split the indexed text
    (an address stays one word, `l'avion` becomes a phrase), so the two always agree."""
    text = text.rstrip("*") if prefix else text
    if not _WORD.search(text):
        return ""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")


def tsquery(text: str) -> str:
    """The search text as PostgreSQL to_tsquery input ("" when nothing is left to look for):
    terms ANDed, `OR` between two, `NOT x` or `-x` excluded, `"a b"` a phrase, `x*` a prefix."""
    out: list[str] = []
    either = negate = False
    for phrase, word in _TERM.findall(text):
        if not phrase and word in ("OR", "AND", "NOT"):
            either, negate = (True, negate) if word == "OR" else (either, negate or word == "NOT")
            continue
        if word.startswith("-") and len(word) > 1:
            negate, word = True, word[1:]
        term = _operand(phrase) if phrase else _operand(word, prefix=word.endswith("*"))
        if term:
            if out:
                out.append("|" if either else "&")
            out.append("!" + term if negate else term)
        either = negate = False
    return " ".join(out)
