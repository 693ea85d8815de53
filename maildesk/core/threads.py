"""Which complaint a mail belongs to.

A reference tag or a reply header only counts when the sender is a party
to that complaint: its customer (or staff, or its linked seller, or someone the
customer put in Cc). A stranger
quoting someone else's reference opens a complaint of their own and sees
nothing of the other one (the zammad#5064 lesson).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from maildesk.core.parties import is_party
from maildesk.core.robots import CUSTOMER, SELLER, STAFF


def belongs(complaint: Mapping, sender: str, role: str, seller_address: str | None = None) -> bool:
    if role == STAFF:
        return True
    if role == SELLER:
        return bool(seller_address) and sender == seller_address
    # the customer, or someone she put in Cc (core/parties.py): a party, who may write in
    return sender == complaint["customer_addr"] or is_party(complaint, sender)


def choose(sender: str, role: str, tagged: Sequence[Mapping], by_headers: Sequence[Mapping],
           seller_addresses: Mapping[int, str] | None = None):
    """The complaint (a row) this mail joins, or None; tags win over headers.

    `seller_addresses` maps a complaint id to its linked seller's address.
    """
    sellers = seller_addresses or {}
    for candidates in (tagged, by_headers):
        for complaint in candidates:
            if belongs(complaint, sender, role, sellers.get(complaint["id"])):
                return complaint
    return None


def choose_automatic(sender: str, is_staff: bool, ours: Sequence[Mapping], claimed: Sequence[Mapping],
                     seller_addresses: Mapping[int, str] | None = None):
    """The complaint automatic mail joins, or None. `ours`: complaints of the mail of ours it
    bounces or answers (its Message-ID); `claimed`: those its tag or reply headers name, which
    count only when the sender is a party (a tag alone from anyone else is not enough)."""
    if ours:
        return ours[0]
    sellers = seller_addresses or {}
    for complaint in claimed:
        if (belongs(complaint, sender, STAFF if is_staff else CUSTOMER)
                or belongs(complaint, sender, SELLER, sellers.get(complaint["id"]))):
            return complaint
    return None


def foreign_reference(sender: str, role: str, tagged: Sequence[Mapping]) -> bool:
    """True when a customer carries another customer's reference (logged, never shown)."""
    return role == CUSTOMER and any(c["customer_addr"] != sender for c in tagged)
