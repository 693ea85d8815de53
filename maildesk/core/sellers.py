"""Seller rules as pure functions (P11-P13): what a valid registry row is,
whether a customer asks for a seller's contact details, which shop a text
names, when outreach needs a reminder or has failed, how many strikes
count against a seller and which status an admin decision leads to.

No I/O here: `seller_registry.py` stores, `seller_desk.py` and
`seller_sanctions.py` carry decisions out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from maildesk.core import addresses, policy
from maildesk.core.policy import Complaint, Decision, handlers, plain

STATUSES = ("active", "flagged", "restricted", "terminated")
DECISIONS = {"restrict": "restricted", "terminate": "terminated", "reinstate": "active"}
STRIKE_KINDS = ("unanswered", "late", "reported")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
# An address inside free text: only where a run of local-part characters starts (the
# look-behind), local part at most 64 as RFC 5321 says. Searching with _EMAIL itself tries
# every start inside a long run of letters and rescans the run each time: quadratic.
_EMAIL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                            r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_PHONE = re.compile(r"\+?[0-9 ().-]+")
FIELD_ALIASES = {
    "id": "id", "seller_id": "id", "seller": "id",
    "shop_name": "shop_name", "shop": "shop_name", "name": "shop_name", "boutique": "shop_name",
    "address": "address", "email": "address", "e-mail": "address", "contact_address": "address",
    "phone": "phone", "telephone": "phone", "téléphone": "phone",
}




# --- the registry file ---------------------------------------------------------

@dataclass(frozen=True)
class Row:
    id: str
    shop_name: str
    address: str
    phone: str | None = None


def validate_row(raw: Mapping[str, object]) -> tuple[Row | None, str | None]:
    """One imported row -> (Row, None) or (None, why it is rejected)."""
    values: dict[str, str] = {}
    for key, value in raw.items():
        name = FIELD_ALIASES.get(str(key or "").strip().lower())
        if name and value is not None and str(value).strip():
            values.setdefault(name, " ".join(str(value).split()))
    seller_id = values.get("id", "")
    if not seller_id:
        return None, "id is missing"
    if not _ID.fullmatch(seller_id):
        return None, f"id {seller_id!r} must be letters, digits, '.', '_' or '-' (at most 64)"
    shop = values.get("shop_name", "")
    if not shop:
        return None, "shop_name is missing"
    if len(shop) > 200:
        return None, "shop_name is longer than 200 characters"
    address = values.get("address", "").lower()
    if not address:
        return None, "address is missing"
    if not _EMAIL.fullmatch(address):
        return None, f"address {address!r} is not an e-mail address"
    phone = values.get("phone")
    if phone is not None:
        digits = sum(ch.isdigit() for ch in phone)
        if not _PHONE.fullmatch(phone) or not 6 <= digits <= 20:
            return None, f"phone {phone!r} is not a phone number"
    return Row(seller_id, shop, address, phone), None


def row_changes(existing: Mapping, row: Row) -> dict:
    """The fields an import would change on a known seller."""
    new = {"shop_name": row.shop_name, "address": row.address, "phone": row.phone}
    return {k: v for k, v in new.items() if (existing[k] or None) != (v or None)}


# --- what customers write ------------------------------------------------------

_SELLER_FR = r"(?:vendeu(?:r|se)|boutique|magasin|marchand)"
_SELLER_EN = r"(?:seller|vendor|merchant|shop|store)"
_REACH_FR = r"(?:contacter|joindre|ecrire a|ecrire au|appeler)"
_REACH_EN = r"(?:contact|reach|email|e-mail|call|write to)"
# words just before "contacter le vendeur" that make it a report, not a request
_PAST = {"ai", "avons", "as", "avait", "deja", "essaye", "tente", "tried", "already", "have", "had",
         "been", "attempted", "i've", "we've"}
_DETAILS = [re.compile(p) for p in (
    # French: the details themselves
    r"\b(?:coordonnees|contact|adresse(?: e-?mail| mail| electronique)?|e-?mail|telephone|numero(?: de telephone)?)"
    r"(?: direct(?:e|es|s)?)?\s+(?:du|de ce|de cette|de la)\s+" + _SELLER_FR,
    # English: the details themselves
    r"\b(?:seller|vendor|merchant)(?:'s|s'|s)?\s+(?:direct\s+)?(?:contact(?: details| information| info)?|details|"
    r"e-?mail(?: address)?|phone(?: number)?|telephone(?: number)?)\b",
    r"\b(?:shop|store)(?:'s)?\s+(?:contact (?:details|information|info)|e-?mail address|phone number)\b",
    r"\bcontact (?:details|information|info) (?:of|for) (?:the|this|my) " + _SELLER_EN,
    # asking how or whether they may reach the seller
    r"\b(?:puis-je|pourrais-je|comment (?:puis-je |pourrais-je |je peux |peut-on )?|je (?:voudrais|veux|souhaite|"
    r"souhaiterais|aimerais)(?: pouvoir)?)\s*" + _REACH_FR + r"\s+(?:directement\s+)?(?:le |la |ce |cette |au )?"
    + _SELLER_FR,
    r"\b(?:can|could|may|how (?:can|do|could)) (?:i|we) (?:directly )?" + _REACH_EN + r"\s+(?:the |this |my )?"
    + _SELLER_EN,
    r"\bi(?:'d| would) like to (?:directly )?" + _REACH_EN + r" (?:the |this |my )?" + _SELLER_EN,
    r"\bi want to (?:directly )?" + _REACH_EN + r" (?:the |this |my )?" + _SELLER_EN,
)]
_DIRECTLY = [re.compile(p) for p in (
    r"\b" + _REACH_FR + r"\s+(?:le |la |ce |cette |au )?" + _SELLER_FR + r"\w*\s+directement",
    r"\b" + _REACH_FR + r"\s+directement\s+(?:le |la |ce |cette |au )?" + _SELLER_FR,
    r"\b" + _REACH_EN + r"\s+(?:the |this |my )?" + _SELLER_EN + r"\s+directly",
    r"\bdirectly " + _REACH_EN + r"\s+(?:the |this |my )?" + _SELLER_EN,
)]


# words just before "the seller's contact details" that make it our own sentence about the
# request ("You asked for...", "Vous nous demandez...", "you will receive..."), not a request:
# a robot that echoes our mail unquoted must not ask again and again
_OURS = re.compile(r"(?:\bvous (?:nous )?(?:demandez|avez demande)|\byou(?: have)? asked(?: us)? for|"
                   r"\byou(?: will|'ll) receive|\bvous (?:les )?recevrez)\s+(?:les |the |ses |leurs |their )?$")


def asks_for_contact(text: str) -> bool:
    """Does the customer ask for the seller's direct contact details (P12)?

    Only the new text of a reply is read (quoted history is stripped
    before). "Contact the seller directly" counts, "I already tried to
    contact the seller directly" does not, nor do our own sentences about
    such a request ("You asked for the seller's contact details")."""
    words = " ".join(plain(text).split())[:4000]
    for pattern in _DETAILS:
        for m in pattern.finditer(words):
            if not _OURS.search(words[max(0, m.start() - 60):m.start()]):
                return True
    for pattern in _DIRECTLY:
        for m in pattern.finditer(words):
            before = re.findall(r"[\w'-]+", words[max(0, m.start() - 40):m.start()])[-3:]
            if not _PAST.intersection(before):
                return True
    return False


_WORDS = re.compile(r"[a-z0-9]+")
MAX_NAME_WORDS = 6


def name_key(name: str) -> str:
    return " ".join(_WORDS.findall(plain(name)))


def mentioned(text: str, names: Mapping[str, str], addresses: Iterable[str]) -> list[str]:
    """Keys (normalised shop names, then addresses) a customer's text names.

    `names` maps a normalised shop name to anything; a shop name only
    counts as whole words, and one shorter than 3 letters never does."""
    found: list[str] = []
    words = _WORDS.findall(plain(_EMAIL_IN_TEXT.sub(" ", text or "")))  # addresses are matched whole, below
    longest: dict[str, int] = {}  # first word of a shop name -> most words of a name starting with it
    for key in names:
        first, *rest = key.split(" ")
        longest[first] = max(longest.get(first, 0), len(rest) + 1)
    hits = []  # (-words, position, key): longer names first, then in reading order
    for i, word in enumerate(words):
        for size in range(min(longest.get(word, 0), MAX_NAME_WORDS, len(words) - i), 0, -1):
            key = " ".join(words[i:i + size])
            if len(key) >= 3 and key in names:
                hits.append((-size, i, key))
    for _size, _i, key in sorted(hits):
        if key not in found:
            found.append(key)
    known = addresses if isinstance(addresses, (set, frozenset, dict)) else set(addresses)
    for m in _EMAIL_IN_TEXT.finditer(text or ""):
        address = m.group(0).lower()
        if address in known and address not in found:
            found.append(address)
    return found


def address_pattern(address: str) -> addresses.Spellings:
    """`address` however it is written (`addresses.Spellings`: any case, `+tag`,
    `%40`, `&#64;`, `[at]`, full-width or zero-width characters...), as a whole
    address: `a@shop.fr` is not found in `la@shop.fr` nor in `a@shop.fr.example`."""
    return addresses.Spellings(address)


def redact(text: str, secret: str, replacement: str) -> str:
    """Remove an address, in any of its spellings, from text meant for someone else."""
    if not secret or not secret.strip():
        return text
    return address_pattern(secret).redact(text or "", replacement)


# --- outreach --------------------------------------------------------------------

def outreach_times(sent_at: datetime, response_hours: float) -> tuple[datetime, datetime]:
    """(reminder, deadline): the reminder goes halfway to the deadline."""
    window = timedelta(hours=response_hours)
    return sent_at + window / 2, sent_at + window


def outreach_step(status: str, reminded_at, remind_at: datetime, due_at: datetime, now: datetime) -> str | None:
    """What the clock owes one outreach at `now`: "remind", "fail" or None.
    A deadline that passed while maildesk was down fails once, with no late reminder."""
    if status != "waiting":
        return None
    if now >= due_at:
        return "fail"
    if reminded_at is None and now >= remind_at:
        return "remind"
    return None


def outreach_next_due(status: str, reminded_at, remind_at: datetime, due_at: datetime) -> datetime | None:
    if status != "waiting":
        return None
    return due_at if reminded_at else remind_at


UNLINKED = "unlinked"  # the outreach state of a complaint no seller is linked to


def outreach_state(seller_id: str | None, last_outreach: tuple[int, str] | None) -> str:
    """Where outreach stands, as the explanation a customer got depends on it: a new
    link, outreach or status allows the explanation once more. `last_outreach`: (id, status)."""
    if seller_id is None:
        return UNLINKED
    return f"{seller_id}:{last_outreach[0]}:{last_outreach[1]}" if last_outreach else f"{seller_id}:-"


@dataclass(frozen=True)
class RequestFacts:
    """What the audit trail says of a complaint's requests for the seller's details. The
    `last_*` are event ids: only their order counts."""
    outreach_state: str
    requests: tuple[dict, ...] = ()  # each request's detail, with its time under "at"
    last_request: int | None = None
    last_disclosure: int | None = None
    last_failure: int | None = None

    def pending(self) -> bool:
        """A request not yet answered with the details."""
        return self.last_request is not None and (self.last_disclosure is None
                                                  or self.last_request > self.last_disclosure)

    def explained(self) -> bool:
        """The customer already got the explanation for this outreach state (the acknowledgement
        of a first message that asked counts, when unlinked)."""
        return any(r.get("outcome") == "explain" and r.get("state", UNLINKED) == self.outreach_state
                   for r in self.requests)

    def disclosed(self) -> bool:
        """The details went out since outreach last failed."""
        return self.last_disclosure is not None and (self.last_failure is None
                                                     or self.last_disclosure > self.last_failure)

    def staff_told(self, since: datetime) -> bool:
        """Staff heard of a request since then (the new-complaint notice says so too)."""
        return any(r["at"] >= since and r.get("staff_told", r.get("outcome") == "explain") for r in self.requests)


def contact_request_outcome(linked: bool, failed: bool, explained: bool = False, disclosed: bool = False) -> str:
    """P12: "disclose" once outreach to the linked seller failed, else "explain"
    (the customer is told imolocale contacts the seller first; staff are told).
    "repeat" when the customer already had that answer: the explanation for this
    state of the outreach, or the details since it failed (a robot must not get
    one mail per mail it sends; staff may send the details again)."""
    if linked and failed:
        return "repeat" if disclosed else "disclose"
    return "repeat" if explained else "explain"


# --- cooperation (P13) --------------------------------------------------------

def cooperation_count(strike_times: Iterable[datetime], now: datetime, window_days: float,
                      since: datetime | None = None) -> int:
    """Strikes within the window, not older than the seller's last reinstatement."""
    start = now - timedelta(days=window_days)
    if since is not None and since > start:
        start = since
    return sum(1 for at in strike_times if start <= at <= now)


def should_flag(status: str, count: int, flag_after: int) -> bool:
    """Only an active seller is flagged; admins already decided about the others."""
    return status == "active" and flag_after > 0 and count >= flag_after


class DecisionError(ValueError):
    """An admin decision that makes no sense for the seller's status."""


def decide(status: str, decision: str) -> str:
    """The status an admin decision leads to."""
    if decision not in DECISIONS:
        raise DecisionError(f"unknown decision {decision!r} (known: {', '.join(DECISIONS)})")
    new = DECISIONS[decision]
    if new == status:
        raise DecisionError(f"the seller is already {status}")
    return new




# --- what the customer and staff are told (decisions, carried out by the workflow) ---

def seller_card(seller: Mapping) -> dict:
    """What templates may show of a seller."""
    return {k: seller[k] for k in ("id", "shop_name", "address", "phone", "status")}


def disclose(d: Decision, c: Complaint, seller: Mapping, now: datetime, trigger: str) -> None:
    """P12: the seller's direct contact details go to the customer, and that is recorded."""
    d.tell_customer(c, "seller_contact_details", "contact_details", now, seller=seller_card(seller))
    d.event("seller_details_disclosed", seller=seller["id"], trigger=trigger)


def customer_message(c: Complaint, now: datetime, cfg, text: str, seller: Mapping | None, failed: bool,
                     facts: RequestFacts) -> Decision:
    """A customer's message that asks for the seller's details: the policy's answer to the
    message with P12's answer added; when staff get the request, it replaces their plain
    notification of the message (one mail, not two)."""
    base = policy.customer_message(c, now, cfg, text)
    extra = answer_contact_request(c, cfg, seller, failed, now, text, state=facts.outreach_state,
                                   explained=facts.explained(), disclosed=facts.disclosed(),
                                   staff_told=facts.staff_told(now - timedelta(hours=1)))
    told = any(m.template == "staff_seller_contact_request" for m in extra.mails)
    d = Decision(mails=[m for m in base.mails if not (told and m.template == "staff_reply")],
                 events=[*base.events])
    d.changes.update(base.changes)
    d.changes.update(extra.changes)
    d.mails.extend(extra.mails)
    d.events.extend(extra.events)
    return d


def answer_contact_request(c: Complaint, cfg, seller: Mapping | None, failed: bool, now: datetime,
                           text: str = "", *, explained: bool = False, disclosed: bool = False,
                           staff_told: bool = False, state: str | None = None) -> Decision:
    """A customer asks for the seller's details: given once outreach failed,
    otherwise the customer hears what imolocale does first and staff are told.

    Each answer goes once: `explained` (the customer already had the explanation
    for this `state` of the outreach) or `disclosed` (they already have the
    details since outreach failed) makes it a repeat, which only tells staff,
    and not even them when `staff_told` (within the last hour)."""
    d = Decision()
    outcome = contact_request_outcome(seller is not None, failed, explained, disclosed)
    tell_staff = outcome == "explain" or (outcome == "repeat" and not staff_told)
    d.event("seller_contact_requested", seller=seller["id"] if seller else None, outcome=outcome,
            state=state, staff_told=tell_staff or None)
    if outcome == "disclose":
        disclose(d, c, seller, now, trigger="customer request")
    elif outcome == "explain":
        d.tell_customer(c, "seller_contact_pending", "update", now, linked=seller is not None)
    if tell_staff:
        d.tell_staff(handlers(c, cfg), "staff_seller_contact_request", "notify",
                     seller=seller_card(seller) if seller else None, text=text.strip()[:5000],
                     repeat=outcome == "repeat", failed=failed)
    return d
