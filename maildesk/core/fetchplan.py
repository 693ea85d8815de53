"""Which parts of a large message to fetch, from its BODYSTRUCTURE: a budget decision over plain
values, so it lives in the core (the IMAP adapter only asks the server and hands the answers
in). Parsing costs ~8 times a message's size in memory, so a message above `[mailbox]
max_message_mb` is never fetched whole: its text parts come first (cut when they do not fit),
then the attachments that fit (each at most `[storage] attachment_max_mb`, all together at most
max_message_mb); the rest are known by name, type and size only.

BODYSTRUCTURE comes as imapclient gives it: nested tuples, a multipart's children as a list
in its first item, a leaf's encoded size (octets) at index 6 and its encoding at index 5."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

EDGE = 1024  # bytes read at each end of an attachment left on the server, to know its exact size
MAX_LEAVES = 1000  # parts of a large message looked at; a hostile one may have many more
SLACK = 4096  # bytes of the budget kept for boundaries and the like
PER_PART = 100  # bytes counted for each part's boundary line and blank lines


def is_multipart(structure) -> bool:
    return isinstance(structure, (list, tuple)) and bool(structure) and isinstance(structure[0], list)


def leaves(structure, prefix: str = "") -> list[tuple[str, tuple]]:
    """(section, BODYSTRUCTURE of the part) for each leaf, in order; an attached message is
    one leaf (its insides are never the sender's words)."""
    out: list[tuple[str, tuple]] = []
    stack = [(structure, prefix)]
    while stack and len(out) < MAX_LEAVES:
        body, section = stack.pop()
        if is_multipart(body):
            children = [(part, f"{section}.{i}" if section else str(i)) for i, part in enumerate(body[0], start=1)]
            stack.extend(reversed(children))
        elif isinstance(body, (list, tuple)) and len(body) > 6:
            out.append((section or "1", body))
    return out


def boundary(structure) -> bytes | None:
    """A multipart's boundary parameter, None when it has none (or is no multipart)."""
    params = structure[2] if is_multipart(structure) and len(structure) > 2 else None
    if not isinstance(params, (list, tuple)):
        return None
    for key, value in zip(params[::2], params[1::2]):
        if isinstance(key, bytes) and key.lower() == b"boundary" and isinstance(value, bytes) and value:
            return value
    return None


def is_base64(body) -> bool:
    return len(body) > 5 and isinstance(body[5], bytes) and body[5].lower() == b"base64"


def octets_of(body) -> int:
    try:
        return max(int(body[6]), 0)
    except (TypeError, ValueError):
        return 0


def decoded_size(body, octets: int) -> int:
    """A part's size once decoded, estimated from its encoded size: base64 carries 57 bytes on
    each 78-byte line (76 characters and CRLF); quoted-printable at most its size."""
    return octets * 57 // 78 if is_base64(body) else octets


@dataclass(frozen=True)
class Part:
    section: str
    name: str
    ctype: str
    is_text: bool  # body text (said by its own MIME header), fetched first
    octets: int  # encoded size, as the server stores it
    size: int  # decoded size (estimated)
    mime_len: int  # its MIME header, sent along with it
    base64: bool = False


def part(section: str, body, name: str, ctype: str, is_text: bool, mime_len: int) -> Part:
    octets = octets_of(body)
    return Part(section, name, ctype, is_text, octets, decoded_size(body, octets), mime_len, is_base64(body))


@dataclass
class Plan:
    take: dict[str, int] = field(default_factory=dict)  # section -> bytes to fetch (fewer: the text is cut)
    kept: list[str] = field(default_factory=list)  # attachments fetched, by name
    omitted: list[Part] = field(default_factory=list)  # attachments left on the server
    text_truncated: bool = False

    def partial(self, p: Part) -> bool:
        return self.take[p.section] < p.octets


def plan(parts: list[Part], max_bytes: int, header_len: int, attachment_max: int) -> Plan:
    """The text first, whole if it fits; then each attachment of at most `attachment_max`
    decoded bytes that still fits in what is left of `max_bytes`, in order."""
    out = Plan()
    budget = max_bytes - header_len - SLACK
    for p in parts:
        if p.is_text:
            out.take[p.section] = max(min(p.octets, budget), 0)
            out.text_truncated = out.text_truncated or out.take[p.section] < p.octets
            budget -= out.take[p.section] + p.mime_len + PER_PART
    for p in parts:
        if p.is_text:
            continue
        if p.size <= attachment_max and p.octets + p.mime_len + PER_PART <= budget:
            out.take[p.section] = p.octets
            budget -= p.octets + p.mime_len + PER_PART
            out.kept.append(p.name)  # its exact size: once parsed, in the attachments table
        else:
            out.omitted.append(p)
    return out


def assemble(header: bytes, sep: bytes | None, parts: list[Part], mime: dict[str, bytes],
             contents: dict[str, bytes]) -> bytes:
    """The message rebuilt from its header and the parts fetched (`contents`, by section);
    `sep` is the multipart's boundary, None for a single-part message. Empties `contents`."""
    if sep is not None:
        pieces = [header, b"\r\n"]
        for p in parts:
            if p.section in contents:
                head = mime[p.section].rstrip(b"\r\n")
                pieces += [b"--" + sep, b"\r\n", head + b"\r\n\r\n" if head else b"\r\n",
                           contents.pop(p.section), b"\r\n"]
        pieces += [b"--" + sep, b"--\r\n"]
    elif "1" in contents:
        pieces = [header, b"\r\n", contents.pop("1")]
    else:  # one big non-text body: the header without it, as an empty text
        pieces = [without_content_fields(header), b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"]
    return b"".join(pieces)


def summary(parts: list[Part], chosen: Plan, omitted_sizes: dict[str, int]) -> dict:
    """What was kept of a large message, for its `large_message` event."""
    large = {"parts": len(parts), "text_parts": sum(1 for p in parts if p.is_text),
             "text_truncated": chosen.text_truncated}
    if chosen.kept:
        large["attachments_kept"] = chosen.kept
    if chosen.omitted:
        large["attachments_omitted"] = [{"name": p.name, "size": omitted_sizes.get(p.section, p.size)}
                                        for p in chosen.omitted]
    return large


_B64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}\Z")


def base64_size(head, tail, octets: int) -> int | None:
    """The decoded size of a base64 body of `octets` bytes from its first and last bytes, when
    its lines are regular (all but the last of one length, CRLF after each); None otherwise."""
    if not isinstance(head, bytes) or not isinstance(tail, bytes) or not head:
        return None
    if octets <= len(head):  # the whole of it
        chars = b"".join(head.split())
        if len(chars) % 4 or not _B64.match(chars):
            return None
        return len(chars) // 4 * 3 - (len(chars) - len(chars.rstrip(b"=")))
    width = head.find(b"\r\n")
    body = tail.rstrip(b"\r\n")
    cut = body.rfind(b"\r\n")
    if width <= 0 or width % 4 or cut < 0:
        return None
    last = body[cut + 2:]
    before = octets - (len(tail) - len(body)) - len(last)  # the full lines, each with its CRLF
    if before % (width + 2) or len(last) > width or not _B64.match(head[:width]) or not _B64.match(last):
        return None
    chars = before // (width + 2) * width + len(last)
    if chars % 4:
        return None
    return chars // 4 * 3 - (len(last) - len(last.rstrip(b"=")))


def without_content_fields(header: bytes) -> bytes:
    """The header without its Content-* fields (folded lines included)."""
    out, skipping = [], False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        skipping = line.lower().startswith(b"content-")
        if not skipping:
            out.append(line)
    return b"".join(out)
