"""The sending budget outsiders cannot spend (issue 12, finding 11), as pure decisions.

Anybody can write to the support address, and every mail we send counts
against the day's sending limit. So what one outside mailbox can make us
send is bounded (counted by `addresses.mailbox_key`: `+tags` and Gmail's
dots are one mailbox), and mail we send *about* outsiders (admin alerts,
staff notifications of a flood) is coalesced: the first goes at once, the
next ones of that hour wait and go together, with their count, in one mail.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(hours=1)  # one coalesced mail per kind (and key) and hour
DAY_FACTOR = 4  # acknowledgements one mailbox gets in 24 h: 4 hours' worth of the hourly cap


@dataclass(frozen=True)
class Intake:
    """What a new complaint from an outside mailbox may cost."""
    send_ack: bool  # an acknowledgement to the customer
    notify_each: bool  # its own staff notification; False: one coalesced flood notice instead
    flood_starts: bool  # the first complaint held back this hour: the admins hear of it


def new_complaint(acks_last_hour: int, acks_last_day: int, held_last_hour: bool, cap_per_hour: int) -> Intake:
    """A mailbox under its caps is answered and its complaint notified one by one; past them
    (a robot, a mail loop, a flood) its complaints are recorded, never answered, and staff
    hear of them in one coalesced notice an hour."""
    within = acks_last_hour < cap_per_hour and acks_last_day < cap_per_hour * DAY_FACTOR
    return Intake(send_ack=within, notify_each=within, flood_starts=not within and not held_last_hour)


def mail_now(last_mailed_at: datetime | None, now: datetime) -> bool:
    """A coalesced notice goes at once when none of its kind went in the last hour; else it waits."""
    return last_mailed_at is None or now >= last_mailed_at + WINDOW


def summary_due(last_mailed_at: datetime | None, oldest_waiting_at: datetime | None, now: datetime) -> bool:
    """Notices that waited go together once the hour since the last mail of their kind is over."""
    return oldest_waiting_at is not None and mail_now(last_mailed_at, now)


def echo_suppressed(kind: str, automatic: bool, sent_last_hour: int, cap_per_hour: int) -> bool:
    """A robot that echoes us without RFC 3834 headers must not keep us talking: automatic mail
    to one mailbox stops at the hourly cap. The acknowledgement is bounded by `new_complaint`
    instead, and what staff write (relays, questions) is never automatic."""
    return automatic and kind != "ack" and sent_last_hour >= cap_per_hour
