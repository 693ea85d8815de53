"""Who besides the customer is a party to a complaint: the people she put in Cc (issue 16).

The customer's Cc (and any extra To besides our address) when the complaint opens, and the new
ones she adds on later messages, are kept on the complaint and copied on every customer-facing
mail. Never our own address (any +alias of it, the mailbox's login), never staff or a staff
domain, never a registered seller, never the customer herself, only addresses mail can go to,
and at most MAX_CC: past that, further addresses are dropped (and said so), the first kept.

A party may write in (threading by tag or reply headers works for her), but she cannot rate,
resolve or close the complaint, and cannot obtain the seller's details: her mail is news for the
handling team, nothing more (`party_message`).

Pure: addresses, the settings and the seller addresses in; kept and dropped addresses out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Collection, Container, Iterable, Mapping

from maildesk.config import Config
from maildesk.core.addresses import mailbox_key, sendable
from maildesk.core.policy import Complaint, Decision, handlers

MAX_CC = 10  # a customer's Cc kept on a complaint; more is a mailing list, not a partner


@dataclass(frozen=True)
class Picked:
    kept: tuple[str, ...]  # in order: those already kept first, then the new ones
    added: tuple[str, ...]  # of `kept`, those that were not there before
    dropped: tuple[tuple[str, str], ...] = ()  # (address, why) of the new ones refused


def ours(cfg: Config) -> frozenset[str]:
    """Mailbox keys of our own addresses: the support address and the logins of the mailbox."""
    return frozenset(mailbox_key(a) for a in (cfg.support_address, cfg.mailbox.username, cfg.smtp.username) if a)


def refusal(address: str, cfg: Config, sellers: Container[str], customer: str) -> str | None:
    """Why `address` may not be copied on a customer's mail, or None when it may."""
    key = mailbox_key(address)
    if key in ours(cfg):
        return "our own address"
    if key == mailbox_key(customer):
        return "the customer herself"
    if address.lower() in cfg.staff or key in {mailbox_key(s) for s in cfg.staff} or cfg.staff_domain(address):
        return "staff"
    if address.lower() in sellers or key in sellers:  # `sellers` may only answer `in` (the registry)
        return "a seller"
    ok, why = sendable(address)
    return None if ok else why


def customer_cc(known: Iterable[str], offered: Iterable[str], cfg: Config, sellers: Container[str],
                customer: str, limit: int = MAX_CC) -> Picked:
    """The complaint's Cc after the customer wrote with `offered` in Cc (and To): `known` kept,
    the new acceptable ones added in order until `limit`, one entry per mailbox."""
    kept = list(dict.fromkeys(known))
    keys = {mailbox_key(a) for a in kept}
    added, dropped = [], []
    for address in offered:
        address = (address or "").strip()
        key = mailbox_key(address)
        if not address or key in keys:
            continue
        keys.add(key)
        why = refusal(address, cfg, sellers, customer)
        if why is None and len(kept) >= limit:
            why = f"more than {limit} addresses in Cc"
        if why:
            dropped.append((address, why))
        else:
            kept.append(address)
            added.append(address)
    return Picked(tuple(kept), tuple(added), tuple(dropped))


def relay_cc(offered: Iterable[str], already: Collection[str], cfg: Config, sellers: Container[str],
             customer: str, limit: int = MAX_CC) -> Picked:
    """Whom a staff member's own Cc adds to her relay to the customer (that mail only): the same
    refusals as the customer's Cc (a reply-all to a notification Cc's colleagues: never copied),
    minus those the complaint already copies."""
    picked = customer_cc((), offered, cfg, sellers, customer, limit)
    taken = {mailbox_key(a) for a in already}
    kept = tuple(a for a in picked.kept if mailbox_key(a) not in taken)
    return Picked(kept, kept, picked.dropped)


def stored(complaint: Mapping) -> tuple[str, ...]:
    """The Cc kept on a complaint row (`cc_addrs`, a JSON list; absent or broken: none)."""
    try:
        value = json.loads(complaint["cc_addrs"] or "[]")
    except (KeyError, IndexError, TypeError, ValueError):
        return ()
    return tuple(a for a in value if isinstance(a, str)) if isinstance(value, list) else ()


def is_party(complaint: Mapping, sender: str) -> bool:
    """Is `sender` one of the people the complaint's customer put in Cc?"""
    key = mailbox_key(sender)
    return any(mailbox_key(a) == key for a in stored(complaint))


def party_message(c: Complaint, now: datetime, cfg: Config, sender: str) -> Decision:
    """A party (in the customer's Cc) wrote: news for the handling team. She cannot rate, resolve,
    close or reopen (her "5/5" after a resolution is news, not a rating; staff may #reopen), and
    her request for the seller's details is not answered (only the customer's counts, P12). An
    answer to a question staff asked (#ask) was asked in her copy too: the complaint stops waiting."""
    d = Decision()
    d.event("party_wrote", party=sender, status=c.status)
    if c.status == "waiting_customer":
        d.changes["status"] = "open"
        d.event("customer_answered", by=sender)
    d.tell_staff(handlers(c, cfg), "staff_reply", "notify", carry="message", party=sender)
    return d


def failed_recipients(text: str, headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The addresses a delivery report says failed: X-Failed-Recipients, and Final-Recipient /
    Original-Recipient lines of the report's text (RFC 3464)."""
    found = []
    for name, value in headers:
        if name.lower() == "x-failed-recipients":
            found += [a.strip() for a in value.split(",")]
    for line in (text or "").splitlines():
        label, _, value = line.partition(":")
        if label.strip().lower() in ("final-recipient", "original-recipient"):
            found.append(value.split(";")[-1].strip())
    return tuple(dict.fromkeys(a.strip("<> ").lower() for a in found if "@" in a))


def failed_cc(complaint: Mapping, failed: Iterable[str]) -> tuple[str, ...]:
    """Of the complaint's Cc, those a delivery report names as failed (never the customer)."""
    keys = {mailbox_key(a) for a in failed}
    return tuple(a for a in stored(complaint) if mailbox_key(a) in keys)
