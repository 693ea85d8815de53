"""Walking the MIME tree: which parts are the sender's words, which are attachments,
which are reports about another mail, and the bytes of each.

The stdlib ``email`` package (compat32) parses the tree once; the walk is
iterative and stops at MAX_PARTS, so a hostile tree costs bounded work.
"""

from __future__ import annotations

import email
import email.generator
import email.message
import io
import re
from dataclasses import dataclass, field

from maildesk.core import filetypes, robots
from maildesk.inbound.attachments import Attachment, filename, is_body_text, safe_filename
from maildesk.inbound.decode import NEWLINES, b64_salvage, charset_note, codec_for, decode_bytes, header_text
from maildesk.inbound.extract import MAX_SCAN

MAX_PARTS = 1000  # a MIME tree bigger than this is hostile; the rest is ignored

_META_CHARSET = re.compile(rb"""(?i)<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""")


_REPORT_PARTS = {
    "message/delivery-status": "delivery-report",
    "message/global-delivery-status": "delivery-report",
    "message/feedback-report": "feedback-report",
    "message/disposition-notification": "disposition-notification",
}


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed -> plain lines, so wrapped sentences stay whole."""
    out: list[str] = []
    buf: str | None = None
    buf_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        soft = content.endswith(" ") and content != "-- "
        if soft and delsp:
            content = content[:-1]
        if buf is not None and depth == buf_depth:
            buf += content
        else:
            if buf is not None:
                out.append(("> " * buf_depth) + buf if buf_depth else buf)
            buf, buf_depth = content, depth
        if not soft:
            out.append(("> " * buf_depth) + buf if buf_depth else buf)
            buf = None
    if buf is not None:
        out.append(("> " * buf_depth) + buf if buf_depth else buf)
    return "\n".join(out)


def part_charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _raw_payload(part: email.message.Message):
    """The payload as parsed: a list of parts, or text with 8-bit bytes surrogate-escaped.

    Not get_payload(): for 8-bit text it decodes by the declared charset, and raises
    for charsets such as 'idna' or 'undefined'; we decode it ourselves."""
    return getattr(part, "_payload", None)


def part_bytes(part: email.message.Message) -> bytes:
    """Decoded payload; broken base64 keeps what decodes (stdlib returns it raw)."""
    payload = _raw_payload(part)
    try:
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    except Exception:
        cte = ""
    if cte == "base64" and isinstance(payload, str):
        return b64_salvage(payload)
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


class _RawBytesGenerator(email.generator.BytesGenerator):
    """Writes headers as received: refolding costs ~0.7 ms a message and alters evidence."""

    def _write_headers(self, msg):
        for name, value in msg.raw_items():
            self._fp.write(f"{name}: {value}".encode("utf-8", "surrogateescape"))
            self.write(self._NL)
        self.write(self._NL)


def _serialize(part: email.message.Message) -> bytes:
    """Bytes of an attached message (or delivery-status blocks) for storage."""
    buf = io.BytesIO()
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else ():
        try:
            _RawBytesGenerator(buf, mangle_from_=False).flatten(sub, unixfrom=False)
        except Exception:
            buf.write(b"[unserializable part]\n")
    return buf.getvalue()


def _recover_multipart(part: email.message.Message) -> email.message.Message | None:
    """A multipart with a missing or wrong boundary: guess it from the body."""
    payload = _raw_payload(part)
    if not isinstance(payload, str):
        return None
    m = re.search(r"(?m)^--([^\s]{1,200})[ \t]*\r?$", payload)
    if not m:
        return None
    boundary = m.group(1)
    if boundary.endswith("--") and payload.find("--" + boundary[:-2]) == m.start():
        boundary = boundary[:-2]
    try:
        rebuilt = email.message_from_string(
            f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n' + payload
        )
    except RecursionError:
        return None
    return rebuilt if rebuilt.is_multipart() else None


def _epilogue_parts(part: email.message.Message) -> list:
    """Parts hidden in the epilogue when a nested multipart reused the outer boundary."""
    epilogue = part.epilogue
    if not epilogue or "--" not in epilogue:
        return []
    try:
        boundary = part.get_boundary()
    except Exception:
        return []
    if not boundary or ("--" + boundary) not in epilogue:
        return []
    delimiter = re.compile(r"(?m)^--" + re.escape(boundary) + r"(?:--)?[ \t]*\r?$")
    found = []
    for chunk in delimiter.split(epilogue)[1:]:
        chunk = chunk.lstrip("\r\n")
        if chunk.strip():
            try:
                found.append(email.message_from_string(chunk))
            except RecursionError:
                continue
    return found


@dataclass
class Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    report: str | None = None
    embedded_ids: list[str] = field(default_factory=list)
    header_texts: list[str] = field(default_factory=list)
    defects: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    feedback: str | None = None  # Feedback-Type of an ARF report, "abuse" for Hotmail's JMRP


def _base64_text(part) -> str | None:
    """The transfer-encoded text of a base64 part as received; None for any other part."""
    raw = _raw_payload(part)
    try:
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    except Exception:
        cte = ""
    return raw if cte == "base64" and isinstance(raw, str) else None


def _add_attachment(body: Body, part, ctype: str, payload: bytes) -> None:
    name = filename(part)
    index = len(body.attachments) + 1
    try:
        disposition = part.get_content_disposition()
        cid = part.get("content-id")
    except Exception:
        disposition, cid = None, None
    cid = header_text(cid).strip().strip("<>").strip()[:250] if cid else None
    inline = disposition == "inline" or (disposition is None and bool(cid))
    text = _base64_text(part)
    defects = tuple(type(d).__name__ for d in getattr(part, "defects", ()) or ())
    problem = filetypes.problem(ctype, payload, text, defects)
    if problem == filetypes.DAMAGED_BASE64 and text is not None:
        payload = text.encode("utf-8", "surrogateescape")  # a guess at the bytes might be wrong: keep what came
    body.attachments.append(Attachment(safe_filename(name, index, ctype), ctype, len(payload), payload,
                                       content_id=cid or None, inline=inline, problem=problem))


def _text_of(part, ctype: str, notes: list[str] | None = None) -> str:
    data = part_bytes(part)
    charset = part_charset(part)
    if ctype == "text/html" and charset is None:
        m = _META_CHARSET.search(data[:4096])
        if m:
            charset = m.group(1).decode("ascii", "ignore")
    text = decode_bytes(data, charset)
    note = charset_note(charset, data)
    if note and notes is not None and note not in notes:
        notes.append(note)
    if ctype == "text/plain":
        try:
            flowed = (part.get_param("format") or "").lower() == "flowed"
            delsp = (part.get_param("delsp") or "").lower() == "yes"
        except Exception:
            flowed = delsp = False
        if flowed:
            text = _unflow(NEWLINES.sub("\n", text), delsp)
    return text


def _count_parts(part, stack: list) -> int:
    """How many leaf parts the walk leaves unread (this one and those still stacked): counted,
    not read, so a 10,000-part message costs a count, not 10,000 attachments."""
    left, todo = 0, [part, *(p for p, _ in stack)]
    while todo:
        p = todo.pop()
        children = _raw_payload(p)
        try:
            inside = p.get_content_maintype() == "message"
        except Exception:
            inside = False
        if isinstance(children, list) and not inside:
            todo.extend(c for c in children if isinstance(c, email.message.Message))
        else:
            left += 1
    return left


def walk(msg: email.message.Message) -> Body:
    """Iterative (no recursion limit) walk sorting parts into body and attachments.

    Parts inside an attached message (message/rfc822, delivery-status ...) are
    not the sender's words: the container becomes one attachment and its
    Message-ID is kept for bounce matching.
    """
    body = Body()
    stack: list[tuple[email.message.Message, bool]] = [(msg, False)]
    seen = 0
    while stack:
        part, inner = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            body.defects.add("TooManyParts")
            left = _count_parts(part, stack)
            body.notes.append(f"{left:,} more parts not read (a message is read up to {MAX_PARTS:,} parts)")
            break
        for defect in getattr(part, "defects", ()) or ():
            body.defects.add(type(defect).__name__)
        try:
            ctype = part.get_content_type()
        except Exception:
            ctype = "text/plain"
        maintype = ctype.partition("/")[0]

        if part.is_multipart():
            children = part.get_payload()
            if maintype == "message":
                if not inner:
                    body.report = body.report or _REPORT_PARTS.get(ctype)
                    _add_attachment(body, part, ctype, _serialize(part))
                    for child in children:
                        if not isinstance(child, email.message.Message):
                            continue
                        if ctype == "message/rfc822":
                            mid = child.get("message-id")
                            if mid:
                                body.embedded_ids.append(header_text(mid))
                            if child.get("x-hmxmroriginalrecipient") is not None:
                                body.feedback = body.feedback or "abuse"  # Hotmail/Outlook JMRP
                        elif ctype == "message/feedback-report":
                            value = child.get("feedback-type")
                            body.feedback = robots.feedback_type(header_text(value) if value else None)
                continue  # the sender's body never lives inside an attached message
            hidden = _epilogue_parts(part)
            if hidden:
                body.defects.add("RecoveredEpiloguePart")
            for child in reversed((children if isinstance(children, list) else []) + hidden):
                if isinstance(child, email.message.Message):
                    stack.append((child, inner))
            continue

        if inner:
            continue
        if maintype == "multipart":
            rebuilt = _recover_multipart(part)
            if rebuilt is not None:
                body.defects.add("RecoveredBoundary")
                stack.append((rebuilt, False))
                continue
            ctype = "text/plain"  # no structure to be found: read it as text

        body.report = body.report or _REPORT_PARTS.get(ctype)
        try:
            disposition = part.get_content_disposition()
        except Exception:
            disposition = None
        name = filename(part)

        if is_body_text(ctype, disposition, name):
            text = _text_of(part, ctype, body.notes)
            if text.strip():
                (body.plain if ctype == "text/plain" else body.html).append(text)
            continue
        payload = part_bytes(part)
        if ctype == "text/rfc822-headers" or (maintype == "message" and ctype != "message/rfc822"):
            body.header_texts.append(decode_bytes(payload[:MAX_SCAN], part_charset(part)))
        _add_attachment(body, part, ctype, payload)
    return body


def declared_charsets(msg: email.message.Message) -> tuple[str, ...]:
    """The charsets the message's own parts declare, in order: raw 8-bit headers are most
    likely written in them (a GB2312 body, a GB2312 subject). Attached messages not included."""
    found: dict[str, None] = {}
    stack = [msg]
    seen = 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        codec = codec_for(part_charset(part))
        if codec and codec != "utf-8":
            found.setdefault(codec, None)
        payload = _raw_payload(part)
        if isinstance(payload, list) and not part.get_content_maintype() == "message":
            stack.extend(reversed([p for p in payload if isinstance(p, email.message.Message)]))
    return tuple(found)
