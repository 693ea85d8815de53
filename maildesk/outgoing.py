"""Building our outgoing messages as bytes, ready for the outbox.

Every header value passes through `clean()`: a customer's name or subject
can never smuggle a header into our mail (no CR, LF or other controls).
"""
from __future__ import annotations

import re
from email import policy as email_policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class _Registry(HeaderRegistry):
    """The stdlib builds a new header class on every lookup (a third of compose's
    time); the classes depend only on the name, so build each once."""

    def __init__(self):
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name):
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = super().__getitem__(name)
        return made


_POLICY = email_policy.default.clone(header_factory=_Registry())


def clean(value: str, limit: int = 900) -> str:
    return _CONTROL.sub(" ", value or "").strip()[:limit]


def address(addr: str, name: str | None = None) -> Address:
    local, _, domain = clean(addr).rpartition("@")
    return Address(display_name=clean(name or "", 200), username=local, domain=domain)


def new_message_id(domain: str, reference: str | None = None) -> str:
    return make_msgid(idstring=(reference or "maildesk").lower(), domain=domain)


def compose(*, from_addr: str, from_name: str, to: list[str], subject: str, text: str,
            html: str | None = None, message_id: str, date: datetime,
            in_reply_to: str | None = None, references: list[str] = (),
            auto_submitted: str | None = "auto-replied", reply_to: str | None = None,
            reference: str | None = None, extra_headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = address(from_addr, from_name)
    msg["To"] = [address(a) for a in to]
    msg["Subject"] = clean(subject)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = clean(in_reply_to)
    refs = [clean(r) for r in references if r][-20:]
    if refs:
        msg["References"] = " ".join(refs)
    if reply_to:
        msg["Reply-To"] = address(reply_to)
    if auto_submitted:
        # RFC 3834: robots must not answer us, and we never answer robots
        msg["Auto-Submitted"] = auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"
    if reference:
        msg["X-Maildesk-Reference"] = clean(reference)
    for name, value in (extra_headers or {}).items():
        msg[name] = clean(value)
    msg.set_content(text, cte="quoted-printable")
    if html:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()
