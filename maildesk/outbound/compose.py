"""Building our outgoing messages as bytes, ready for the outbox.

Every header value passes through `clean()`: a customer's name or subject
can never smuggle a header into our mail (no CR, LF or other controls).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy as email_policy, quoprimime
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime

# C0 and C1 controls and the Unicode line separators: str.splitlines() breaks on \x85 and
# \u2028 too, and the email package then refuses the header (the mail could not be queued)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SURROGATE = re.compile("[\ud800-\udfff]")  # no encoding can write a lone surrogate
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})  # "=?" there is part of an address


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
# RFC 6532: a mail to or from an internationalized address (sent with SMTPUTF8) carries its header
# fields in UTF-8, so `To:` shows the address exactly as the envelope does (an encoded-word is not
# allowed inside an address: `=?utf-8?q?j=C3=B6rg?=@x` reaches nobody)
_POLICY_UTF8 = _POLICY.clone(utf8=True)


@dataclass(frozen=True)
class Attachment:
    """A file carried by an outgoing mail. `inline` with a `content_id`: an image shown in place
    (Content-Disposition: inline), as the sender had it."""
    filename: str
    content_type: str  # e.g. "text/html"
    content: bytes
    content_id: str | None = None
    inline: bool = False


def clean(value: str, limit: int = 900) -> str:
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", value or "")).strip()[:limit]


def _literal(name: str, value: str) -> str:
    """A text value holding "=?" as RFC 2047 words of the whole value, folded.

    The stdlib reads "=?...?=" in our text as an encoded word: a customer's subject
    "Colis =??b?qQ?=" became undecodable bytes and folding it raised
    UnicodeEncodeError. Encoded ourselves, it reads back exactly as written."""
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\n") + "\n"


def address(addr: str, name: str | None = None) -> Address:
    local, _, domain = clean(addr).rpartition("@")
    return Address(display_name=clean(name or "", 200), username=local, domain=domain)


def new_message_id(domain: str, reference: str | None = None) -> str:
    return make_msgid(idstring=(reference or "maildesk").lower(), domain=domain)


def _headers(*, from_addr, from_name, to, cc=(), subject, message_id, date, in_reply_to, references,
             auto_submitted, reply_to, reference) -> list[tuple[str, object]]:
    """The header fields of an outgoing mail, in order, as given to EmailMessage."""
    headers: list[tuple[str, object]] = [
        ("From", address(from_addr, from_name)),
        # as stored, which is what aiosmtplib puts in RCPT TO (addresses.sendable checks both agree);
        # an Address built from `"a,b"` and the domain would quote the quoted local part again
        ("To", ", ".join(clean(a) for a in to)),
        *([("Cc", ", ".join(clean(a) for a in cc))] if cc else []),
        ("Subject", clean(subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
    ]
    if in_reply_to:
        headers.append(("In-Reply-To", clean(in_reply_to)))
    refs = [clean(r) for r in references if r][-20:]
    if refs:
        headers.append(("References", " ".join(refs)))
    if reply_to:
        headers.append(("Reply-To", address(reply_to)))
    if auto_submitted:
        # RFC 3834: robots must not answer us, and we never answer robots
        headers.append(("Auto-Submitted", auto_submitted))
        headers.append(("X-Auto-Response-Suppress", "All"))
    if reference:
        headers.append(("X-Maildesk-Reference", clean(reference)))
    return headers


def compose(*, from_addr: str, from_name: str, to: list[str], subject: str, text: str, cc: list[str] = (),
            html: str | None = None, message_id: str, date: datetime,
            in_reply_to: str | None = None, references: list[str] = (),
            auto_submitted: str | None = "auto-replied", reply_to: str | None = None,
            reference: str | None = None, extra_headers: dict[str, str] | None = None,
            attachments: tuple[Attachment, ...] = ()) -> bytes:
    headers = _headers(from_addr=from_addr, from_name=from_name, to=to, cc=cc, subject=subject, message_id=message_id,
                       date=date, in_reply_to=in_reply_to, references=references,
                       auto_submitted=auto_submitted, reply_to=reply_to, reference=reference)
    utf8 = not all(a.isascii() for a in (from_addr, *to, *cc, reply_to or ""))
    policy = _POLICY_UTF8 if utf8 else _POLICY
    if html or extra_headers or attachments:
        return _compose_email(headers, text, html, extra_headers, policy, attachments)
    return _compose_plain(headers, text, policy)


def _compose_email(headers, text: str, html: str | None = None,
                   extra_headers: dict[str, str] | None = None, policy=_POLICY,
                   attachments: tuple[Attachment, ...] = ()) -> bytes:
    """The general case, through the stdlib's EmailMessage (HTML alternative, extra headers)."""
    msg = EmailMessage(policy=policy)
    for name, value in headers:
        if isinstance(value, str) and "=?" in value and name.lower() not in _ADDRESS_HEADERS:
            msg.set_raw(name, _literal(name, value)[len(name) + 2:-1])
        else:
            msg[name] = value
    for name, value in (extra_headers or {}).items():
        msg[name] = clean(value)
    msg.set_content(text, cte="quoted-printable")
    if html:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    for att in attachments:  # multipart/mixed: the text (and its HTML) first, then each file
        maintype, _, subtype = att.content_type.partition("/")
        extra = {"disposition": "inline" if att.inline else "attachment", "filename": clean(att.filename, 200)}
        if att.content_id:
            extra["cid"] = "<" + clean(att.content_id, 250).strip("<>") + ">"
        if maintype == "text" and _utf8(att.content):  # UTF-8 text, said so, so every reader shows its accents
            msg.add_attachment(att.content.decode("utf-8"), subtype=subtype, charset="utf-8",
                               cte="quoted-printable", **extra)
        else:
            msg.add_attachment(att.content, maintype=maintype or "application", subtype=subtype or "octet-stream",
                               **extra)
    return msg.as_bytes()


def _utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# --- the common case, text only: the same bytes as _compose_email, written directly -------------
# EmailMessage parses every header value into a tree and folds it again on output (two thirds of
# the cost of an acknowledgement). A short, plain-ASCII value comes out of that unchanged, so it
# is written as is; anything else (non-ASCII, long, unusual characters) takes the stdlib's own
# folding for that one header. tests/unit/test_outgoing.py checks the bytes are identical.

_MAX_LINE = _POLICY.max_line_length  # 78
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_ATOM = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"  # RFC 5322 atext, without '=' and '?' (encoded words)
_PLAIN_NAME = re.compile(r"(?:%s(?: %s)*)?\Z" % (_ATOM, _ATOM))
_PLAIN_ADDR = re.compile(r"%s(?:\.%s)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z" % (_ATOM, _ATOM))
_NEWLINE = re.compile(r"\r\n|\r|\n")
_TEXT_HEADERS = ('Content-Type: text/plain; charset="utf-8"\n'
                 "Content-Transfer-Encoding: quoted-printable\n"
                 "MIME-Version: 1.0\n\n")


def _plain_address(value: Address) -> str | None:
    if _PLAIN_NAME.match(value.display_name) and _PLAIN_ADDR.match(value.addr_spec):
        return f"{value.display_name} <{value.addr_spec}>" if value.display_name else value.addr_spec
    return None


def _fold(name: str, value, policy=_POLICY) -> str:
    """One header line as the stdlib writes it, without its cost when the value needs no work."""
    if isinstance(value, str):
        if "=?" in value and name.lower() not in _ADDRESS_HEADERS:
            return _literal(name, value)
        plain = value if _PLAIN_VALUE.match(value) else None
    else:
        parts = [_plain_address(a) for a in (value if isinstance(value, list) else [value])]
        plain = None if None in parts else ", ".join(parts)
    if plain is not None and len(name) + 2 + len(plain) <= _MAX_LINE:
        return f"{name}: {plain}\n"
    return policy.fold(name, policy.header_store_parse(name, value)[1])


def _compose_plain(headers, text: str, policy=_POLICY) -> bytes:
    lines = text.encode("utf-8").splitlines()
    body = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), _MAX_LINE)
    head = "".join(_fold(name, value, policy) for name, value in headers)
    return (head + _TEXT_HEADERS + "\n".join(_NEWLINE.split(body))).encode(
        "utf-8" if policy.utf8 else "ascii", "surrogateescape")
