"""What an admin's search text means to SQLite FTS5.

The text is first tried as FTS5 query syntax (so `colis OR paquet` and `rembours*` work);
when SQLite refuses it (a lone quote, `AND` alone, `*`, parentheses, `l'avion`, an
address), the store asks again with `plain_words()`: every token quoted, so the search
is answered as plain words and never fails on its syntax.
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
