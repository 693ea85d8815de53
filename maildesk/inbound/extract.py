"""What maildesk reads out of a mail's text and headers: addresses, message-ids, language,
order number.

mail-parser is given only the address and Date headers, where its forgiving
address scanner and date parser are good, and never sees payloads (it would
re-encode every attachment to base64 and mix the text of attached messages
into the body).
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import re
from datetime import datetime, timezone

import mailparser

from maildesk.inbound.decode import CTRL_LINE, NEWLINES, SURROGATE, decode_words, one_line, unsurrogate

MAX_NAME = 200
MAX_ADDRESS_HEADER = 16_000  # chars of an address header given to mail-parser
MAX_SCAN = 200_000  # chars of text searched for order numbers / bounce ids

_MSGID = re.compile(r"<([^<>]{1,900})>")


def _clean_addr(addr) -> str | None:
    """A lower-cased bare address, or None when it is not one."""
    if not addr or not isinstance(addr, str):
        return None
    addr = unsurrogate(addr).strip().strip("<>").strip().lower()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or len(addr) > 320:
        return None
    if any(c.isspace() for c in addr) or CTRL_LINE.search(addr) or "<" in addr or ">" in addr:
        return None
    if "@" in domain or domain.startswith(".") or domain.endswith("."):
        return None
    return addr


def utf8_address(addr: str, raw_value: str) -> str:
    """8-bit bytes in an address are UTF-8 (RFC 6532) or nothing: a guessed
    charset would make up an address (Dovecot stores a NUL byte as 0x80,
    which windows-1252 reads as '€'). Bytes that are not UTF-8 become U+FFFD,
    which `addresses.sendable` refuses: the sender is known, not answerable."""
    if addr.isascii() or not SURROGATE.search(raw_value):
        return addr
    if addr in raw_value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").lower():
        return addr
    return "".join(c if c.isascii() else "\ufffd" for c in addr)


def std_addresses(value: str) -> list[tuple[str, str]]:
    """Fallback address parsing when mail-parser is unavailable or failed."""
    try:
        return email.utils.getaddresses([value])
    except Exception:
        return []


def addr_list(pairs) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for pair in pairs or ():
        try:
            addr = _clean_addr(pair[1])
        except (IndexError, TypeError):
            continue
        if addr:
            seen.setdefault(addr, None)
    return tuple(seen)


def _display_name(name) -> str:
    if not name or not isinstance(name, str):
        return ""
    name = decode_words(unsurrogate(name))
    name = one_line(name, MAX_NAME * 2).strip("\"' ")
    return name[:MAX_NAME]


def msgids(values, limit: int | None = None) -> tuple[str, ...]:
    """Message-ids from In-Reply-To/References, in order, without duplicates."""
    seen: dict[str, None] = {}
    for value in values:
        found = _MSGID.findall(value)
        if not found:
            bare = value.strip()
            if "@" in bare and " " not in bare and len(bare) < 900:
                found = [bare]
        for raw_id in found:
            mid = CTRL_LINE.sub("", "".join(raw_id.split()))
            if mid:
                seen.setdefault(f"<{mid}>", None)
    ids = tuple(seen)
    if limit and len(ids) > limit:
        # Keep the thread root and the most recent ancestors.
        ids = ids[:1] + ids[-(limit - 1) :]
    return ids


def message_id_of(value: str | None, raw: bytes) -> str:
    if value:
        found = _MSGID.findall(value)
        candidate = found[0] if found else value
        candidate = CTRL_LINE.sub("", "".join(candidate.split())).strip("<>")
        if candidate:
            return f"<{candidate[:900]}>"
    # Same message fetched twice must get the same id; line endings may differ
    # between IMAP (CRLF) and files (LF), so hash them normalized.
    digest = hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()[:32]
    return f"<{digest}@maildesk.invalid>"


_BODY_MSGID = re.compile(r"(?im)^[ \t>]*message-id[ \t]*:[ \t]*(?:\n[ \t]+)?(<[^<>\s]{1,900}>)")


def reported_ids(embedded_ids: list[str], header_texts: list[str], text: str, own_id: str) -> tuple[str, ...]:
    """The Message-IDs a bounce or report is about: those of attached messages first, then
    Message-ID lines in attached header blocks, then (only when neither has one) in the text."""
    sources = list(embedded_ids)
    for chunk in header_texts:
        sources.extend(_BODY_MSGID.findall(NEWLINES.sub("\n", chunk)))
    if not sources and text:
        sources.extend(_BODY_MSGID.findall(text[:MAX_SCAN]))
    return tuple(mid for mid in msgids(sources) if mid != own_id)


# --- language

_FR_WORDS = frozenset(
    """le la les de des du un une et est pas je j vous nous mon ma mes ce cette ces pour avec sur
    dans que qui ne plus bonjour merci cordialement commande colis reçu reçue remboursement ai été au
    aux en il elle votre vos mais ou où très bien sont avez suis c l qu toujours rien encore depuis
    car donc aussi cela ça madame monsieur svp vendeur article livraison jamais déjà leur lui notre
    nos ils sans avoir fait être bonne journée salutations""".split()
)
_EN_WORDS = frozenset(
    """the and is are was were not i you we my your this that for with to of have has it be been
    order received refund hello hi thanks thank regards please dear or what when still yet item
    package did do does can could would will at from by if never just got get there their they
    our us about which who any all so because i'm don't haven't didn't sincerely seller delivery
    shipped arrived""".split()
)
_WORD = re.compile(r"[a-zà-öø-ÿœæ']+")


def detect_language(text: str) -> str:
    """'fr' or 'en' by stop-word count; French unless English clearly wins."""
    if not text:
        return "fr"
    fr = en = 0
    for word in _WORD.findall(text[:5000].lower()):
        word = word.strip("'")
        if word in _EN_WORDS:
            en += 1
        elif word in _FR_WORDS:
            fr += 1
        elif "'" in word:
            head = word.split("'", 1)[0]
            if head in ("j", "l", "qu", "c", "n", "d", "s", "m", "t"):
                fr += 1
    return "en" if en >= 2 and en > fr else "fr"


# --- order numbers

_ID = r"(?P<id>[A-Z0-9](?:[A-Z0-9-]{2,38})[A-Z0-9])(?!\w)"
_NUM = r"(?:n\s?[°º]|n[o°º]\.?|num(?:[ée]ro)?\.?|nr\.?|r[ée]f(?:[ée]rence)?\.?|#)"
# Whitespace runs are bounded: "\s*\s*" around optional parts is quadratic on
# hostile input, and real mail never puts more than a few spaces there.
_S = r"\s{0,3}"
_ORDER_PATTERNS = (
    re.compile(
        rf"(?<!\w){_NUM}{_S}(?:de\s{{1,3}}(?:la\s{{1,3}})?|d['’]{_S})?commandes?(?!\w){_S}[:#]?{_S}"
        rf"(?:{_NUM}{_S}[:#]?{_S})?{_ID}",
        re.I,
    ),
    re.compile(rf"(?<!\w)commandes?(?!\w){_S}(?:{_NUM}{_S})?[:#]?{_S}{_ID}", re.I),
    re.compile(
        rf"(?<!\w)order(?!\w){_S}(?:number|num\.?|no\.?|nr\.?|n[°º]|#|id|ref(?:erence)?)?{_S}[:#]?{_S}{_ID}",
        re.I,
    ),
)


def find_order_number(text: str) -> str | None:
    """An order number near 'commande' / 'order' (4+ chars, at least one digit)."""
    if not text:
        return None
    text = text[:MAX_SCAN]
    best: tuple[int, str] | None = None
    for pattern in _ORDER_PATTERNS:
        for m in pattern.finditer(text):
            ident = m.group("id")
            if any(c.isdigit() for c in ident):
                if best is None or m.start() < best[0]:
                    best = (m.start(), ident)
                break
    return best[1] if best else None





def mailparser_view(index: dict[str, list[str]], defects: set[str]):
    """mail-parser over the address and Date headers only.

    It is good at recovering mailboxes from broken headers and at odd date
    formats; it is never shown payloads, so it copies none of them.
    """
    hm = email.message.Message()
    for name in ("from", "to", "cc", "reply-to", "date"):
        for value in index.get(name, ())[:1]:
            if len(value) > MAX_ADDRESS_HEADER:  # thousands of recipients: keep the first ones
                value = value[: value.rfind(",", 0, MAX_ADDRESS_HEADER) + 1 or MAX_ADDRESS_HEADER].rstrip(",")
                defects.add("AddressHeaderTruncated")
            hm.set_raw(name.title(), value)
    hm.set_payload("")
    try:
        mp = mailparser.MailParser(hm)
        result = (mp.from_, mp.to, mp.cc, mp.reply_to, mp.date)
        defects.update(str(c) for c in mp.defects_categories)
        return result
    except Exception as exc:  # mail-parser is an optimisation, not a dependency of correctness
        defects.add(f"MailParserFailed:{type(exc).__name__}")
        return None


def parse_date(value: str | None, fallback) -> datetime | None:
    if value:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except Exception:
            dt = None
        if isinstance(dt, datetime):
            return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)
    if isinstance(fallback, datetime):
        return fallback if fallback.tzinfo is not None else fallback.replace(tzinfo=timezone.utc)
    return None


_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+?)\s*>")
_BARE_ADDR = re.compile(r"^\s*([^\s<>@,;:\"()]+@[^\s<>@,;:\"()]+)\s*$")


def loose_addresses(value: str) -> list[tuple[str, str]]:
    """Mailboxes from unambiguous shapes only, when mail-parser found none.

    The stdlib splits "=?utf-8?q?a:b?= <x@y>" at the colon and returns junk
    addresses; an angle-addr or a lone addr-spec cannot be misread that way.
    """
    found = []
    start = 0
    for m in _ANGLE_ADDR.finditer(value):
        found.append((value[start : m.start()].strip().lstrip(",;").strip(), m.group(1)))
        start = m.end()
    if not found:
        for token in value.split(","):
            m = _BARE_ADDR.match(token)
            if m:
                found.append(("", m.group(1)))
    return found


def from_header(raw_value: str, candidates) -> tuple[str, str, bool] | None:
    """(address, display name, null-sender?), None when no sender can be read."""
    if candidates is None:  # mail-parser failed: the stdlib is all there is
        candidates = std_addresses(raw_value)
    for name, addr in candidates:
        clean = _clean_addr(addr)
        if clean:
            return clean, _display_name(name), False
    loose = loose_addresses(raw_value)
    if len({addr.lower() for _, addr in loose}) == 1:
        clean = _clean_addr(loose[0][1])
        if clean:
            return clean, _display_name(loose[0][0]), False
    # Bounces come from the null sender ("MAILER-DAEMON <>") or a bare local
    # part ("<MAILER-DAEMON>"): keep them, they are what bounce handling needs.
    low = raw_value.lower()
    squashed = "".join(low.split())
    if "<>" in squashed or "mailer-daemon" in low or "postmaster" in low:
        addr = "postmaster" if "postmaster" in low and "mailer-daemon" not in low else "mailer-daemon"
        name = raw_value.split("<", 1)[0] if "<" in raw_value else ""
        return addr, _display_name(name), True
    return None
