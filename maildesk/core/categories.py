"""Complaint categories (issue 18): which one a new complaint most likely belongs to, from the
keywords `[categories]` gives each (French and English), and which category staff meant by what
they typed after `#category`.

Matching is on whole words and phrases, without accents or case: "recu" and "REÇU" are the same
word, "retour" does not match "retourner". A keyword in the subject counts twice; the category
with most hits wins, ties going to the one listed first; none at all gives "autre".
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Mapping, Sequence

OTHER = "autre"
TEXT_LIMIT = 5000  # characters of the message read: the opening says what it is about
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_COMBINING = re.compile(r"[\u0300-\u036f]")  # the accents NFKD splits off Latin letters


def normalise(text: str | None) -> str:
    """Lower case, no accents, words separated by one space, padded with a space each side."""
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    bare = _COMBINING.sub("", decomposed)
    return f" {_NOT_WORD.sub(' ', bare.replace('œ', 'oe').replace('æ', 'ae')).strip()} "


@lru_cache(maxsize=4096)
def _keyword(kw: str) -> str:
    """A keyword as it is searched for: normalised, with its spaces (whole words only)."""
    return normalise(kw) if normalise(kw).strip() else ""


def _hits(words: str, keywords: Sequence[str]) -> int:
    return sum(1 for kw in keywords if (k := _keyword(kw)) and k in words)


def suggest(subject: str | None, text: str | None, categories: Mapping[str, Sequence[str]]) -> str:
    """The category a new complaint most likely belongs to; OTHER when no keyword matches."""
    title, body = normalise(subject), normalise((text or "")[:TEXT_LIMIT])
    best, best_score = OTHER, 0
    for name, keywords in categories.items():
        score = 2 * _hits(title, keywords) + _hits(body, keywords)
        if score > best_score:
            best, best_score = name, score
    return best


def names(categories: Mapping[str, Sequence[str]]) -> list[str]:
    """Every valid category, OTHER last (it is always valid)."""
    return [n for n in categories if n != OTHER] + [OTHER]


def find(typed: str, categories: Mapping[str, Sequence[str]]) -> str | None:
    """The category staff meant (case, accents and spacing forgiven), or None."""
    wanted = normalise(typed)
    return next((n for n in names(categories) if normalise(n) == wanted), None)


def unknown(typed: str, categories: Mapping[str, Sequence[str]]) -> str:
    """The short answer to an unknown category: what was typed and the valid ones."""
    return (f"#category {typed!r} is not a category; the categories are: "
            + ", ".join(names(categories)))
