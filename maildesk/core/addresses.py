"""What an e-mail address means to us, apart from how it is spelled.

`mailbox_key` folds the spellings that reach one mailbox (case, `+tags`,
Gmail's dots and googlemail.com) into one key: the flood caps and the
sending budget count by it, so `bob+1@`, `bob+2@` and `b.o.b@gmail.com`
are one sender, not three.

`sendable` says once, where an address enters (a customer, staff
`#assign`, a seller import, a Cc), whether mail can go to it: an address
aiosmtplib refuses in RCPT, or one the To header cannot show as the
envelope does, would stop the outbox; an IP-literal domain would make our
relay connect wherever an outsider chooses. Such an address is recorded,
never queued.

`Spellings` finds an address in text however people write it (`%40`,
`&#64;`, `[at]`, full-width or zero-width characters, `+tags`, without its
dots...), in linear time: the text is folded once into a canonical stream
that remembers where each character came from, then searched.
"""
from __future__ import annotations

import re
import unicodedata
from array import array
from email.policy import default as _default_policy
from html.entities import html5

from aiosmtplib.email import parse_address as _smtp_envelope  # what the outbox's library puts in RCPT TO

_HEADER = _default_policy.header_factory
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
MAX_LOCAL = 64  # octets, RFC 5321 4.5.3.1.1
MAX_ADDRESS = 254  # octets: a path of 256 with its angle brackets


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


# --- can mail go there? ---------------------------------------------------------------

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff"  # RFC 5321 atext; RFC 6531 adds UTF-8
_DOT_STRING = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"\Z')
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_ESCAPED = re.compile(r"\\(.)", re.S)


def split(address: str) -> tuple[str, str]:
    """(local part without its quotes and backslashes, domain): the mailbox,
    whichever way its local part is quoted."""
    local, _, domain = (address or "").rpartition("@")
    if len(local) >= 2 and local[0] == local[-1] == '"':
        local = _ESCAPED.sub(r"\1", local[1:-1])
    return local, domain


def needs_smtputf8(address: str) -> bool:
    """Mail to an internationalized address (RFC 6531) needs the server's SMTPUTF8."""
    return not address.isascii()


def sendable(address: str) -> tuple[bool, str]:
    """(True, "") when mail can go to `address` as maildesk stores it (a bare
    addr-spec), else (False, why). Checked against RFC 5321 (what the SMTP
    server accepts), aiosmtplib's own parsing (what it puts in RCPT TO) and
    the To header our mail would show: all three must name one mailbox."""
    if not isinstance(address, str) or not address.strip():
        return False, "empty address"
    if len(address.encode("utf-8", "surrogatepass")) > MAX_ADDRESS:
        return False, f"longer than {MAX_ADDRESS} octets"
    why = _bad_character(address)
    if why:
        return False, why
    local, at, domain = address.rpartition("@")
    if not at:
        return False, "no '@'"
    why = _local_problem(local) or _domain_problem(domain)
    if why:
        return False, why
    try:
        envelope = _smtp_envelope(address)
    except ValueError:
        return False, "aiosmtplib refuses it in RCPT TO"
    if split(envelope) != split(address):
        return False, f"aiosmtplib would send it as {envelope!r}"
    read = _HEADER("To", address).addresses  # the To header shows the address as written
    if len(read) != 1 or split(read[0].addr_spec) != split(address):
        return False, f"a To header would read it as {', '.join(a.addr_spec for a in read)!r}"
    return True, ""


def _bad_character(address: str) -> str | None:
    for ch in address:
        if ch.isascii() and ch.isprintable():
            continue
        code = f"U+{ord(ch):04X}"
        if ch == "\ufffd":
            return f"holds bytes that were not UTF-8 ({code}; a NUL byte arrives as one)"
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            return f"control character {code}"
        if category in ("Cf", "Zs", "Zl", "Zp", "Co", "Cn"):
            return f"invisible, spacing or unassigned character {code}"
    return None


def _local_problem(local: str) -> str | None:
    if not local or local == '""':
        return "empty local part"
    if len(local.encode("utf-8")) > MAX_LOCAL:
        return f"local part longer than {MAX_LOCAL} octets"
    if local.startswith('"'):
        if _QUOTED.match(local):
            return None
        if local.count('"') > 2 or not local.endswith('"') or len(local) < 2:
            return f"local part {local!r} mixes quoted and unquoted text"
        return f"quoted local part {local!r} is not a valid quoted string"
    if _DOT_STRING.match(local):
        return None
    if '"' in local:
        return f"a '\"' inside the unquoted local part {local!r}"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return f"local part {local!r} has an empty part between dots"
    odd = next((ch for ch in local if ch != "." and not re.match(f"[{_ATEXT}]", ch)), "?")
    return f"local part has {odd!r}, allowed only inside quotes"


def _domain_problem(domain: str) -> str | None:
    if not domain:
        return "no domain"
    if domain.startswith("["):
        return f"IP-literal domain {domain}: not answered (our relay would connect to that host)"
    if domain.endswith("."):
        return "domain ends with a dot"
    ascii_domain = domain.lower()
    if not domain.isascii():
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return f"domain {domain!r} is not a valid internationalized name"
    if len(ascii_domain) > 253:
        return "domain longer than 253 octets"
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        return f"domain {domain!r} has no dot (not a public domain)"
    for label in labels:
        if not label:
            return f"domain {domain!r} has an empty label"
        if len(label) > 63:
            return "a domain label is longer than 63 octets"
        if not _LABEL.match(label):
            return f"domain label {label!r} is not letters, digits and inner '-'"
        if label.startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return f"domain label {label!r} is not valid punycode"
    if labels[-1].isdigit():
        return f"top-level domain {labels[-1]!r} is a number (an IP address without brackets?)"
    return None


# --- where does an address appear in text? ---------------------------------------------

# what is copied as is (lower-cased): printable ASCII but for space, '%', '&' and '\'
_RUN = re.compile(r"[\x21-\x24\x27-\x5b\x5d-\x7e]+")
_SPACE = re.compile(r"\s+")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_NUMERIC = re.compile(r"&#(?:([0-9]{1,7})|[xX]([0-9A-Fa-f]{1,6}));?")
_NAMED = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});?")
_BACKSLASH = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2}))")
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # blank letters that show as nothing
_DOTS = {"\u3002": ".", "\uff61": ".", "\u2024": ".", "\ufe52": "."}
_UTF8_LENGTH = [(0xC2, 0xDF, 2), (0xE0, 0xEF, 3), (0xF0, 0xF4, 4)]
_fold_cache: dict[str, str] = {}


def _fold_char(ch: str) -> str:
    """One character as the matcher sees it: compatibility form (full-width
    '＠' is '@'), lower case, no accents, spaces as ' ', invisible ones gone."""
    folded = _fold_cache.get(ch)
    if folded is None:
        if ch in _FILLERS or unicodedata.category(ch) == "Cf":
            folded = ""
        else:
            decomposed = unicodedata.normalize("NFKD", _DOTS.get(ch, ch))
            folded = "".join(" " if c.isspace() else c for c in decomposed.lower()
                             if not unicodedata.combining(c))
        if len(_fold_cache) < 10000:
            _fold_cache[ch] = folded
    return folded


def _decode_at(text: str, i: int) -> tuple[str, int]:
    """The character that starts at text[i] once percent-encoding, an HTML
    entity or a \\u escape is undone, and where it ends."""
    ch = text[i]
    if ch == "%":
        m = _PERCENT.match(text, i)
        if m:
            lead = int(m.group(1), 16)
            if lead < 0x80:
                return chr(lead), m.end()
            size = next((n for low, high, n in _UTF8_LENGTH if low <= lead <= high), 0)
            data, end = bytearray([lead]), m.end()
            while size and len(data) < size and (m := _PERCENT.match(text, end)):
                data.append(int(m.group(1), 16))
                end = m.end()
            try:
                return data.decode("utf-8"), end
            except UnicodeDecodeError:
                pass
    elif ch == "&":
        m = _NUMERIC.match(text, i)
        if m:
            code = int(m.group(1), 10) if m.group(1) else int(m.group(2), 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), m.end()
        m = _NAMED.match(text, i)
        if m:
            name = m.group(1)
            value = html5.get(name + ";") if m.group(0).endswith(";") else html5.get(name)
            if value:
                return value, m.end()
    elif ch == "\\":
        m = _BACKSLASH.match(text, i)
        if m:
            code = int(m.group(1) or m.group(2), 16)
            if not 0xD800 <= code <= 0xDFFF:
                return chr(code), m.end()
    return ch, i + 1


def fold(text: str) -> tuple[str, array, array]:
    """(folded text, starts, ends): folded[k] came from text[starts[k]:ends[k]].
    Runs of spaces become one ' '. One pass, each character read once."""
    out: list[str] = []
    starts, ends = array("q"), array("q")
    i, n = 0, len(text)
    while i < n:
        m = _RUN.match(text, i)
        if m:
            j = m.end()
            out.append(text[i:j].lower())
            starts.extend(range(i, j))
            ends.extend(range(i + 1, j + 1))
            i = j
            continue
        m = _SPACE.match(text, i)
        if m:
            out.append(" ")
            starts.append(i)
            ends.append(m.end())
            i = m.end()
            continue
        decoded, j = _decode_at(text, i)
        for c in decoded:
            for f in _fold_char(c):
                out.append(f)
                starts.append(i)
                ends.append(j)
        i = j
    return "".join(out), starts, ends


def _refold(text: str) -> tuple[str, array, array]:
    """`fold`, twice when needed: `%2540` and `&amp;#64;` are '@' encoded twice."""
    once, starts, ends = fold(text)
    if not any(c in once for c in "%&\\"):
        return once, starts, ends
    twice, starts2, ends2 = fold(once)
    return twice, array("q", map(starts.__getitem__, starts2)), array("q", (ends[k - 1] for k in ends2))


_OPEN, _CLOSE = r"[\[({<]", r"[\])}>]"
_AT = rf"(?: ?@ ?| ?{_OPEN} ?(?:at|@|arobase) ?{_CLOSE} ?| (?:at|arobase) )"
_DOT = rf"(?: ?\. ?| ?{_OPEN} ?(?:dot|point|\.) ?{_CLOSE} ?| (?:dot|point) )"
# a file name's extension after the address ("jean@example.fr.pdf"), not a longer domain
_EXTENSIONS = "(?:jpe?g|png|gif|webp|heic|bmp|tiff?|pdf|txt|eml|msg|docx?|odt|xlsx?|ods|csv|zip|rar|7z|mp4|mov)"
_QUOTE = "[\"'\u2018\u2019\u201c\u201d\u00ab\u00bb]?"


class Spellings:
    """Every way people write one address: any case, a `+tag`, with or
    without the dots of its local part, quoted, `%40`, `&#64;` or
    `&commat;`, `\\u0040`, ` @ `, `[at]`/`(at)`/` at `/`arobase` with
    `[dot]`/`(dot)`/` dot `/`point`, full-width and other compatibility
    forms, zero-width characters anywhere, in a file name (`scan_a@shop.fr.pdf`).
    A longer address that merely contains it (`la@shop.fr`,
    `a@shop.fr.example`) is not it."""

    def __init__(self, address: str):
        raw_local, raw_domain = split((address or "").strip())
        local = fold(raw_local)[0].strip()
        base = local.partition("+")[0] or local
        letters = base.replace(".", "") or base
        local_re = f"(?:{_DOT})?".join(re.escape(c) for c in letters)
        forms = {raw_domain}
        for other in (lambda d: d.encode("idna").decode("ascii"), lambda d: d.encode("ascii").decode("idna")):
            try:
                forms.add(other(raw_domain))  # the A-label and the U-label forms of an IDN
            except (UnicodeError, ValueError):
                pass
        forms = {fold(f)[0].strip() for f in forms} - {""}
        if not letters or not forms:
            self.pattern = re.compile(r"(?!)")  # not an address: nothing we could recognise
            return
        if forms & GMAIL_DOMAINS:
            forms |= GMAIL_DOMAINS
        domain_re = "|".join(_DOT.join(re.escape(label) for label in form.split("."))
                             for form in sorted(forms, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<![^\W_]|[.+-]){_QUOTE}{local_re}(?:\+[\w.=-]{{0,64}})?{_QUOTE}{_AT}"
                                  rf"(?:{domain_re})(?![\w-]|\.(?!{_EXTENSIONS}\b)[\w-])")

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the address is in `text`, as (start, end) of the original text."""
        if not text:
            return []
        folded, starts, ends = _refold(text)
        return [(starts[m.start()], ends[m.end() - 1]) for m in self.pattern.finditer(folded)]

    def found(self, text: str) -> bool:
        return bool(self.spans(text))

    def redact(self, text: str, replacement: str) -> str:
        """`text` with every spelling of the address replaced."""
        out, pos = [], 0
        for start, end in self.spans(text):
            if start >= pos:
                out += [text[pos:start], replacement]
                pos = end
        return "".join(out) + text[pos:] if out else (text or "")


def smtp_problem(address: str) -> str | None:
    """Why the outbox must not put this address on an SMTP command line, or None.
    The last guard before the server (rows queued before addresses were checked
    where they enter): the same rule as `sendable`, so the two never disagree."""
    ok, why = sendable(address)
    return None if ok else f"address {address!r}: {why}"
