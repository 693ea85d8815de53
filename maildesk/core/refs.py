"""Complaint references: PREFIX-XXXXXX, random (not guessable from a
neighbour's) and ending in a check character so that one mistyped or two
swapped characters never name another complaint.

Five random symbols from a 31-symbol alphabet (no 1/I/L, no O, no U) give
28 million references; the check symbol is a weighted sum modulo 31, a
prime, which catches every single substitution and every adjacent swap.
Reading is forgiving the way people mistype: O is read as 0.
"""
from __future__ import annotations

import re
import secrets

ALPHABET = "023456789ABCDEFGHJKMNPQRSTVWXYZ"
assert len(ALPHABET) == 31
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
BODY_LEN = 5


def check_symbol(body: str) -> str:
    total = sum((i + 1) * _VALUE[c] for i, c in enumerate(body))
    return ALPHABET[total % 31]


def new_reference(prefix: str) -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LEN))
    return f"{prefix}-{body}{check_symbol(body)}"


def normalize(candidate: str) -> str | None:
    """The canonical code of a typed reference body, or None when its check fails."""
    code = candidate.upper().replace("O", "0")
    if len(code) != BODY_LEN + 1 or any(c not in _VALUE for c in code):
        return None
    return code if check_symbol(code[:-1]) == code[-1] else None


def tag_pattern(prefix: str) -> re.Pattern:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*-\s*([0-9A-Za-z]{6})\s*\]", re.IGNORECASE)


def find_references(prefix: str, text: str) -> list[str]:
    """Valid references tagged in a subject, in order, as PREFIX-CODE."""
    found = []
    for m in tag_pattern(prefix).finditer(text or ""):
        code = normalize(m.group(1))
        if code and f"{prefix.upper()}-{code}" not in found:
            found.append(f"{prefix.upper()}-{code}")
    return found


def read_reference(prefix: str, typed: str) -> str | None:
    """A reference as a person types or pastes it (`imo-4k7m2q`, ` [IMO-4K7M2Q] `,
    `Re: [IMO-4K7M2Q] Colis`, O for 0), read exactly as a mail tag is; None unless it names one."""
    found = find_references(prefix, f"[{typed.strip().strip('[]').strip()}]")
    return found[0] if len(found) == 1 else None


def tag(reference: str) -> str:
    return f"[{reference}]"


def without_tags(prefix: str, subject: str) -> str:
    """The subject with every `[PREFIX-XXXXXX]` tag removed (spaces tidied): a new complaint's
    subject must not carry another complaint's reference. Bare mentions (no brackets) stay."""
    return re.sub(r"\s{2,}", " ", tag_pattern(prefix).sub(" ", subject or "")).strip()


def tagged_subject(reference: str, subject: str) -> str:
    """The subject with our tag once, at the front, whatever replies did to it."""
    prefix = reference.split("-")[0]
    cleaned = tag_pattern(prefix).sub("", subject or "").strip()
    cleaned = re.sub(r"^((re|fwd?|tr|réf|aw|sv)\s*:\s*)+", "", cleaned, flags=re.IGNORECASE).strip()
    return f"{tag(reference)} {cleaned}".strip()
