"""Personal data (RGPD articles 15, 17, 20): what counts as one person's, the keyed hash the
erasure audit keeps instead of their address, and what an anonymised value looks like.

Anonymising keeps the statistics (references, levels, times, deadlines, ratings, strikes) and
replaces every text that could name or quote the person. Pure: values in, values out.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re

from maildesk.core.addresses import Spellings, mailbox_key

ERASED = "[erased]"
ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never delivered, so nothing can be mailed there
ERASED_BYTES = b"[erased]"

# event detail keys whose short, plain values are figures or codes, never the person's words
KEEP_KEYS = frozenset({
    "level", "seller", "due", "outcome", "trigger", "strike", "status", "since", "satisfied", "previous",
    "late", "category", "asked", "via", "score", "source", "staff", "owner", "actor", "outreach", "rating",
    "reason", "from", "to_level", "team", "count", "deadline", "merged_from", "into", "target", "kind",
})
# the staff's and customer's words: erased whatever their shape
TEXT_KEYS = frozenset({"text", "note", "notes", "subject", "customer", "error", "command", "why", "mail",
                       "name", "body", "address", "cc"})
_TOKEN = re.compile(r"[\w.:+-]{0,40}")


def keyed_hash(key: bytes, address: str) -> str:
    """HMAC-SHA256 of the address's mailbox key (case, +tags and Gmail dots folded): the same
    person gives the same hash however they spelled it; without the key it cannot be tested."""
    return hmac.new(key, mailbox_key(address).encode("utf-8"), hashlib.sha256).hexdigest()


def erased_address(ref: str) -> str:
    """The customer address an anonymised complaint keeps: unique per complaint (so no two
    erased customers look like one), undeliverable, and naming nobody."""
    return f"{ref.lower()}@{ERASED_DOMAIN}"


def is_erased(address: str | None) -> bool:
    return bool(address) and address.lower().endswith("@" + ERASED_DOMAIN)


def scrub_detail(detail_json: str | None) -> str:
    """An event's detail with every value that could hold a person's words or address erased:
    numbers, booleans and short codes under known keys stay (the statistics need them)."""
    try:
        detail = json.loads(detail_json or "{}")
    except ValueError:
        return json.dumps({"detail": ERASED})
    if not isinstance(detail, dict):
        return json.dumps({"detail": ERASED})
    return json.dumps({k: _scrub_value(k, v) for k, v in detail.items()}, ensure_ascii=False)


def _scrub_value(key: str, value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if key in TEXT_KEYS:
        return ERASED
    if key in KEEP_KEYS and isinstance(value, str) and "@" not in value and _TOKEN.fullmatch(value):
        return value
    return ERASED


def mentions(address: str, text: str | None) -> bool:
    """Does `text` hold the address in any of its spellings (case, +tag, dots, `[at]`...)?"""
    return bool(text) and Spellings(address).found(text)


def drop_address(addresses_json: str | None, address: str) -> str | None:
    """A JSON list of addresses (cc_addrs) without the person; None stays None."""
    if addresses_json is None:
        return None
    try:
        items = json.loads(addresses_json)
    except ValueError:
        return addresses_json
    if not isinstance(items, list):
        return addresses_json
    key = mailbox_key(address)
    return json.dumps([a for a in items if not (isinstance(a, str) and mailbox_key(a) == key)])


def ambiguous(address: str, staff: dict[str, str] | set[str], seller_addresses: set[str],
              admins: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why an erase by this address must be refused (it is also someone who works with us), or None."""
    key = mailbox_key(address)
    if any(mailbox_key(s) == key for s in staff) or any(mailbox_key(a) == key for a in admins):
        return f"{address} is a staff address ([teams]/[staff]/admins): erase refused, it would erase staff mail"
    if any(mailbox_key(s) == key for s in seller_addresses):
        return (f"{address} is a seller's registry address: erase refused; a seller's record is exported "
                f"with `maildesk privacy export --seller ID`")
    return None


def mask_spans(data: bytes, needles: list[bytes]) -> tuple[bytes, int]:
    """`data` with every case-insensitive occurrence of each needle replaced by as many `x`
    (same length: a log file rewritten in place keeps every byte offset); the number found."""
    out = bytearray(data)
    lower = data.lower()
    found = 0
    for needle in needles:
        n = needle.lower()
        if not n:
            continue
        start = lower.find(n)
        while start >= 0:
            out[start:start + len(n)] = b"x" * len(n)
            found += 1
            start = lower.find(n, start + len(n))
    return bytes(out), found


def redact_text(text: str | None, address: str, replacement: str) -> str | None:
    """`text` with every spelling of the address replaced (None stays None)."""
    return None if text is None else Spellings(address).redact(text, replacement)


def redact_bytes(raw: bytes | None, address: str, replacement: str) -> bytes | None:
    """A raw mail with the address (any case) replaced in its bytes: headers name it in ASCII."""
    if raw is None:
        return None
    needle, out, pos = address.strip().lower().encode("utf-8"), bytearray(), 0
    lower = raw.lower()
    start = lower.find(needle)
    while start >= 0:
        out += raw[pos:start] + replacement.encode("utf-8")
        pos = start + len(needle)
        start = lower.find(needle, pos)
    return bytes(out + raw[pos:])
