"""The newly written part of a reply: quoted history, attribution lines and forwarded
blocks taken away, the customer's own words (and signature) kept.
"""

from __future__ import annotations

import re

_ATTR_START = re.compile(r"^\s*(?:on|le|am|el|il|op|em)\s", re.I)
_ATTR_END = re.compile(
    r"(?:wrote|a\s+[ée]crit|schrieb|escribi[óo]|ha\s+scritto|schreef|escreveu)\s*:\s*$", re.I
)
_ATTR_WORD = re.compile(r"wrote|[ée]crit|schrieb|escribi|scritto|schreef|escreveu", re.I)
_SEPARATOR = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original message|message d['’]origine|mail original|message original|"
    r"courriel original|forwarded message|message transf[ée]r[ée]|urspr[üu]ngliche nachricht|"
    r"weitergeleitete nachricht|mensaje original|messaggio originale)\s*[-_=*]{2,}\s*$",
    re.I,
)
_FORWARD = re.compile(
    r"^\s*(?:begin forwarded message|d[ée]but du message (?:r[ée]exp[ée]di[ée]|transf[ée]r[ée]))\s*:?\s*$",
    re.I,
)
_HB_FROM = re.compile(r"^[\s*]*(?:from|de|von|da|van)[\s*]*:[\s*]*\S", re.I)
_HB_KEY = re.compile(
    r"^[\s*]*(sent|date|to|subject|cc|envoy[ée]|[àa]|objet|gesendet|datum|an|betreff|enviado|para|"
    r"asunto|fecha|inviato|oggetto|data)[\s*]*:",
    re.I,
)
_BLANK_RUNS = re.compile(r"\n{3,}")
_RULE = re.compile(r"(?:[-_=]{5,}|\*(?:\s*\*){2,})\Z")  # on stripped lines: "\s*$" after "\*\s*" was quadratic


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style 'From:/Sent:/To:/Subject:' (or 'De :/Envoyé :/À :/Objet :') block."""
    if not _HB_FROM.match(lines[i]):
        return False
    keys = set()
    for line in lines[i + 1 : i + 9]:
        m = _HB_KEY.match(line)
        if m:
            keys.add(m.group(1).lower())
            if len(keys) >= 2:
                return True
    return False


def _attribution(lines: list[str], i: int) -> int:
    """Length (1-3 lines) of an 'On ... wrote:' / 'Le ... a écrit :' line group at i, else 0."""
    starts = bool(_ATTR_START.match(lines[i]))
    joined = ""
    for k in range(3 if starts else 1):
        if i + k >= len(lines) or not lines[i + k].strip() or _is_quoted(lines[i + k]) or len(lines[i + k]) > 500:
            return 0
        joined = f"{joined} {lines[i + k]}" if joined else lines[i + k]
        if _ATTR_END.search(joined):
            return k + 1
    return 0


def strip_quoted(text: str) -> str:
    """The newly written part of a reply; the whole text if nothing would remain.

    Line-based and linear so hostile bodies cannot make it slow.  '>' lines are
    dropped wherever they are (inline replies survive); an attribution line
    followed by quoted lines is dropped; an attribution, separator or mail
    header block followed by unquoted history (Outlook, HTML converted to text)
    ends the reply.  Signatures are kept: they often carry the customer's
    name, phone or shop.
    """
    if not text:
        return text
    lines = text.split("\n")
    n = len(lines)
    out: list[str] = []
    cut = False
    may_attribute = _ATTR_WORD.search(text) is not None
    i = 0
    while i < n:
        line = lines[i]
        if _is_quoted(line):
            i += 1
            continue
        if _SEPARATOR.match(line) or _FORWARD.match(line) or _header_block(lines, i):
            cut = True
            break
        k = _attribution(lines, i) if may_attribute else 0
        if k:
            j = i + k
            while j < n and not lines[j].strip():
                j += 1
            if j >= n or _is_quoted(lines[j]):
                i = j
                continue
            if _ATTR_START.match(line):
                cut = True
                break
        out.append(line)
        i += 1
    if cut:
        while out and (not out[-1].strip() or _RULE.match(out[-1].strip())):
            out.pop()
    if len(out) == n:
        return text
    reply = _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip("\n").rstrip()
    return reply if reply.strip() else text
