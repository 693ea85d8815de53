"""What an e-mail address means to us, apart from how it is spelled.

`mailbox_key` folds the spellings that reach one mailbox (case, `+tags`,
Gmail's dots and googlemail.com) into one key: the flood caps and the
sending budget count by it, so `bob+1@`, `bob+2@` and `b.o.b@gmail.com`
are one sender, not three.
"""
from __future__ import annotations

from aiosmtplib.email import parse_address

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def mailbox_key(address: str) -> str:
    """One key per mailbox: lower case, no `+tag`, no dots for Gmail."""
    local, at, domain = (address or "").strip().lower().rpartition("@")
    if not at:
        return (address or "").strip().lower()
    quoted = local.startswith('"') and local.endswith('"') and len(local) > 1
    if not quoted:
        base, plus, _tag = local.partition("+")
        if base:
            local = base
    if domain in GMAIL_DOMAINS:
        domain = "gmail.com"
        if not quoted:
            local = local.replace(".", "")
    return f"{local}@{domain}"


def smtp_problem(address: str) -> str | None:
    """Why this address cannot go on an SMTP command line as it is, or None when it can.
    The outbox checks it before saying anything to the server: the SMTP library refuses some
    shapes (`bob"smith"@x`, `"a"."b"@x`), and would quietly send `<a>@x` to `a` instead."""
    if any(ord(c) < 32 or ord(c) == 127 for c in address):
        return f"address {address!r} holds a control character"
    try:
        parsed = parse_address(address)
    except ValueError:
        return f"address {address!r} is refused by the SMTP library"
    if parsed != address.strip():
        return f"address {address!r} would be sent to {parsed!r} instead"
    return None
