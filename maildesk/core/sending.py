"""What may be sent now, and what an attempt's outcome means for the row: pure rules the SMTP
adapter (adapters/outbox.py) carries out. Plain values in, plain values out; no clock.

Near the daily limit, what goes first (tiers, lowest first): a customer's first answer and
staff's answers to customers; then other mail (staff notifications, escalations, seller mail);
last routine mail (status updates, the digest) and admin alerts. Only the first tier may use
`[smtp] reserve`. Gmail counts recipients, not mails: a team of 4 costs 4."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

FIRST, OTHER, LAST = 0, 1, 2
FIRST_KINDS = ("ack", "relay", "ask", "resolution")

MAX_BACKOFF = timedelta(hours=1)
MAX_UNEXPECTED_ATTEMPTS = 5  # an error nobody foresaw on one row: tried this often, then the row fails
PROBE_EVERY = timedelta(hours=1)  # after Gmail's 5.4.5, one mail an hour tries whether it is over


def tier(kind: str, audience: str, routine: bool) -> int:
    if audience == "customer" and kind in FIRST_KINDS:
        return FIRST
    return LAST if routine or audience == "admin" else OTHER


def allowance(rows: list[tuple[int, int]], room: int | None, reserve: int) -> int:
    """How many of `rows` ((tier, recipients), in sending order) may go now: each row takes its
    recipients from what is left today (`room`; None: no limit), and only the first tier may
    use the reserve. A row that does not fit waits whole (never partly sent), and every row
    after it waits too: nothing jumps ahead of it."""
    if room is None:
        return len(rows)
    for n, (t, recipients) in enumerate(rows):
        if recipients > (room if t == FIRST else room - reserve):
            return n
        room -= recipients
    return len(rows)


def may_go(rows: list[tuple[int, int]], limit: int | None, sent_last_24h: int, reserve: int,
           probing: bool = False) -> int:
    """How many of the due `rows` ((tier, recipients), first tier first) go in this batch: all
    without a daily `limit`, else what `allowance` leaves room for; while Gmail's limit pauses
    sending and a probe is due (`probing`), at most one."""
    go = allowance(rows, limit - sent_last_24h, reserve) if limit else len(rows)
    return min(go, 1) if probing else go


def backoff(attempts: int) -> timedelta:
    """The wait before the next try of a row that failed `attempts` times: 30 s doubling, at most an hour."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def gives_up(unexpected: int) -> bool:
    """An error nobody foresaw, met `unexpected` times on one row (this try included): the row fails."""
    return unexpected >= MAX_UNEXPECTED_ATTEMPTS


# --- the outcome of one send: the adapter returns one, the outbox stores it in one place ---------

@dataclass(frozen=True)
class Sent:
    note: str | None = None
    # recipients the server refused while it took the mail for others (a Cc'd address, issue 16):
    # (address, "code message") each; the mail is sent, the refusals are recorded
    refused: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TempFail:
    reason: str
    stop: bool = False  # the connection (or the server's patience) is gone: stop sending on it
    in_doubt: bool = False  # it broke mid-send: the server may have accepted the mail
    unexpected: bool = False  # an error nobody foresaw: counted, and bounded
    quota: bool = False  # Gmail's daily limit (5.4.5): all sending pauses


@dataclass(frozen=True)
class PermFail:
    reason: str


def final(outcome: Sent | TempFail | PermFail, unexpected: int) -> Sent | TempFail | PermFail:
    """The outcome to store: an unforeseen error becomes a permanent failure once `gives_up`."""
    if isinstance(outcome, TempFail) and outcome.unexpected and gives_up(unexpected):
        return PermFail(f"{outcome.reason} (gave up after {unexpected} tries)")
    return outcome
