"""Who sent a mail and what kind of mail it is: robot, staff, seller, unlisted
colleague or customer.

Robots come first: an out-of-office from a staff member is still a robot,
and a robot never gets an automatic answer (no mail loops, RFC 3834).
A colleague writing from a staff domain ([teams] domains) whose address is
not listed is never a customer: her mail is kept and obeys nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from maildesk.config import Config
from maildesk.inbound.parse import InboundMail

ROBOT, STAFF, SELLER, UNLISTED, CUSTOMER = "robot", "staff", "seller", "unlisted", "customer"


@dataclass(frozen=True)
class Sender:
    role: str
    reason: str = ""  # why a robot


def classify(mail: InboundMail, cfg: Config, seller_addresses: frozenset[str] = frozenset()) -> Sender:
    if mail.from_addr == cfg.support_address:
        return Sender(ROBOT, "sent from our own address")
    if mail.auto_reason:
        return Sender(ROBOT, mail.auto_reason)
    if mail.from_addr in cfg.staff:
        return Sender(STAFF)
    if mail.from_addr in seller_addresses:
        return Sender(SELLER)
    if cfg.staff_domain(mail.from_addr):
        return Sender(UNLISTED)
    return Sender(CUSTOMER)
