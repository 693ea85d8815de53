"""Raw RFC 5322 bytes -> an immutable :class:`InboundMail`, along the e-mail's path:
decode (charsets, encoded-words) -> mime (walk, attachments) -> html (to text) ->
reply (quote stripping) -> extract (addresses, language, order number), with
core.robots saying whether the mail is automatic.

Pure: no network, no database, no files, no complaint logic.  The daemon must
never lose a mail because parsing failed, so :func:`parse` raises nothing but
:class:`ParseError`, and only for input that is not usable e-mail at all.
"""

from __future__ import annotations

import email
import email.parser
from dataclasses import dataclass, field
from datetime import datetime

from maildesk.core import robots
from maildesk.inbound.decode import CTRL_LINE, decode_bytes, decode_words, normalize_text, one_line, unsurrogate
from maildesk.inbound.extract import (
    addr_list, detect_language, find_order_number, from_header, loose_addresses, mailparser_view, message_id_of,
    msgids, parse_date, reported_ids, std_addresses, utf8_address,
)
from maildesk.inbound.html import html_to_text
from maildesk.inbound.attachments import Attachment
from maildesk.inbound.mime import Body, declared_charsets, part_bytes, part_charset, walk
from maildesk.inbound.reply import strip_quoted

__all__ = ["InboundMail", "ParseError", "parse"]

MAX_SUBJECT = 500
MAX_REFERENCES = 200


@dataclass(frozen=True)
class InboundMail:
    message_id: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: str | None
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    # Bodies and headers stay out of repr() so logging a mail leaks no content.
    text: str = field(repr=False)
    reply_text: str = field(repr=False)
    html: str | None = field(repr=False)
    attachments: tuple[Attachment, ...]
    language: str
    auto_reason: str | None
    bounce_of: tuple[str, ...]
    auth_results: tuple[str, ...] = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    defects: tuple[str, ...]
    size: int
    order_number: str | None
    # What was read by guessing (unknown charsets, undeclared 8-bit headers): worth a note on the complaint.
    notes: tuple[str, ...] = ()
    # An abuse feedback report (ARF, Hotmail JMRP): its Feedback-Type, e.g. "abuse"; bounce_of names our mail.
    feedback: str | None = None
    # Bcc: only a sender's own copy has it (the Sent folder), where it counts against the sending limit.
    bcc: tuple[str, ...] = ()


class ParseError(Exception):
    """The input is not a usable e-mail; ``reason`` says why in one line."""

    def __init__(self, reason: str):
        reason = " ".join(str(reason).split())[:300] or "unparseable message"
        super().__init__(reason)
        self.reason = reason


def parse(raw: bytes) -> InboundMail:
    """Parse raw message bytes; only ParseError escapes, whatever the input."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ParseError(f"input is {type(raw).__name__}, not bytes")
    try:
        return _parse(raw)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("message structure nested too deeply") from None
    except Exception as exc:
        raise ParseError(f"internal error {type(exc).__name__}: {exc}") from exc


def _parse(raw: bytes) -> InboundMail:
    if not raw.strip():
        raise ParseError("empty message")
    data = raw
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if data[:1] in (b" ", b"\t", b"\r", b"\n"):
        data = data.lstrip(b" \t\r\n")
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ParseError("not an e-mail: Outlook .msg (OLE2) file")

    defects: set[str] = set()
    try:
        msg = email.message_from_bytes(data)
        shallow = False
    except RecursionError:
        # The stdlib parser recurses once per nesting level; keep the headers
        # and read the body as text rather than losing the mail.
        msg = email.parser.BytesParser().parsebytes(data, headersonly=True)
        shallow = True
        defects.add("NestingTooDeep")

    raw_items = list(msg.raw_items())
    if not raw_items:
        raise ParseError("not an e-mail: no header section")

    charsets = declared_charsets(msg)
    notes: list[str] = []
    headers: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}  # lower name -> unfolded, 8-bit-fixed, not RFC 2047 decoded
    decoded: dict[str, list[str]] = {}
    for name, value in raw_items:
        name = CTRL_LINE.sub("", unsurrogate(str(name))).strip()
        value = value if isinstance(value, str) else str(value)
        plain = unsurrogate(value, charsets, notes)
        if "\r" in plain or "\n" in plain:
            plain = plain.replace("\r", "").replace("\n", "")
        text = CTRL_LINE.sub(" ", decode_words(plain, notes))
        key = name.lower()
        index.setdefault(key, []).append(plain)
        decoded.setdefault(key, []).append(text)
        headers.append((name, text))

    if "from" not in index:
        raise ParseError("no From address (From header missing)")

    view = mailparser_view(index, defects)
    mp_from, mp_to, mp_cc, mp_reply_to, mp_date = view if view else (None, None, None, None, None)

    sender = from_header(index["from"][0], mp_from)
    if sender is None:
        raise ParseError("unparseable From address" if index["from"][0].strip() else "empty From header")
    from_addr, from_name, null_sender = sender
    from_addr = utf8_address(from_addr, next((str(v) for n, v in raw_items if str(n).strip().lower() == "from"), ""))
    if null_sender:
        defects.add("NullFromAddress")

    def addresses(key: str, mp_value) -> tuple[str, ...]:
        if key not in index:
            return ()
        if view is None:
            return addr_list(std_addresses(index[key][0]))
        return addr_list(mp_value) or addr_list(loose_addresses(index[key][0]))

    to = addresses("to", mp_to)
    cc = addresses("cc", mp_cc)
    bcc = addresses("bcc", None)
    reply_to_all = addresses("reply-to", mp_reply_to)
    reply_to = reply_to_all[0] if reply_to_all else None

    subject = one_line(decoded["subject"][0], MAX_SUBJECT) if "subject" in decoded else ""
    date = parse_date(_first(decoded, "date"), mp_date)
    if "date" in index and date is None:
        defects.add("BadDate")

    message_id_value = _first(index, "message-id")
    message_id = message_id_of(message_id_value, raw)
    if not message_id_value or message_id.endswith("@maildesk.invalid>"):
        defects.add("MissingMessageId")
    in_reply_to = msgids(index.get("in-reply-to", ()))
    references = msgids(index.get("references", ()), MAX_REFERENCES)

    if shallow:
        body = Body()
        text = decode_bytes(part_bytes(msg), part_charset(msg))
        if text.strip():
            body.plain.append(text)
    else:
        body = walk(msg)
    defects |= body.defects
    notes.extend(n for n in body.notes if n not in notes)
    feedback = body.feedback or robots.hotmail_complaint(
        subject, any(a.content_type == "message/rfc822" for a in body.attachments))
    del msg  # the parsed tree holds the encoded payloads; drop it early

    html = "\n".join(body.html) if body.html else None
    if body.plain:
        text = normalize_text("\n\n".join(body.plain))
    elif html:
        text = normalize_text(html_to_text(html))
    else:
        text = ""
    reply_text = strip_quoted(text)
    language = detect_language(reply_text)
    order_number = find_order_number(subject) or find_order_number(reply_text)
    if order_number is None and reply_text is not text:
        order_number = find_order_number(text)

    report = robots.report_kind(body.report, feedback, _first(index, "content-type"))
    if report == "feedback-report" and feedback is None:
        feedback = "other"
    auto_reason = robots.auto_reason(decoded, from_addr, subject, report)

    bounce_of: tuple[str, ...] = ()
    if auto_reason is not None:
        bounce_of = reported_ids(body.embedded_ids, body.header_texts, text, message_id)

    return InboundMail(
        message_id=message_id,
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        text=text,
        reply_text=reply_text,
        html=html,
        attachments=tuple(body.attachments),
        language=language,
        auto_reason=auto_reason,
        bounce_of=bounce_of,
        auth_results=tuple(decoded.get("authentication-results", ())),
        headers=tuple(headers),
        defects=tuple(sorted(defects)),
        size=len(raw),
        order_number=order_number,
        notes=tuple(notes),
        feedback=feedback,
        bcc=bcc,
    )


def _first(h: dict[str, list[str]], name: str) -> str | None:
    values = h.get(name)
    return values[0] if values else None
