"""Which policy deadline applies to a complaint now, one answer for every screen that shows
deadlines (`status`, `show`, `list --overdue`, the digest).

The times come from `policy.deadlines` (counted from first contact, P7-P10); this module only says
which of them a complaint still faces at its level, and whether each was met or missed, so the
command line and the digest cannot drift from the clock that escalates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from maildesk.core import policy

# The deadlines the clock enforces on an open complaint: (name shown, policy.deadlines key, the level
# below which it applies, None for any). The 24 h step moves level 1 to 2, the 48 h step moves 1 or 2
# to 3 (policy._escalations); the 5-day target holds at every level.
CLOCK = (("24h", "resolution_team", 2), ("48h", "experience_team", 3), ("5d", "target", None))

# What `show` reports as met or missed: (policy.deadlines key, the line it prints).
PROMISES = (("resolution_team", "24 h: resolved by customer service or passed to resolution team"),
            ("findings", "48 h: findings given, or passed to customer experience team"),
            ("target", "5 days: resolution target"))
SETTLED = ("resolved", "closed")
_ANY_MOMENT = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Deadline:
    name: str  # 24h | 48h | 5d
    due: datetime
    overdue: bool


@dataclass(frozen=True)
class Outcome:
    deadline: str  # a policy.deadlines key
    label: str
    due: datetime
    state: str  # met | missed | ahead


def applies(name: str, level: int) -> bool:
    """Whether the clock deadline `name` still concerns a complaint at `level`."""
    below = next(b for n, _key, b in CLOCK if n == name)
    return below is None or level < below


def facing(first_contact: datetime, level: int, now: datetime, cfg) -> list[Deadline]:
    """The clock deadlines a complaint open at `level` faces, in time order, each overdue or not at `now`."""
    due = policy.deadlines(first_contact, cfg)
    return [Deadline(name, due[key], now >= due[key]) for name, key, _below in CLOCK if applies(name, level)]


def applying(first_contact: datetime, level: int, now: datetime, cfg) -> Deadline | None:
    """The deadline that applies now: the first one the complaint faces that has not passed; None
    when every one has (the sweep escalates it, or the 5-day target is already missed)."""
    return next((d for d in facing(first_contact, level, now, cfg) if not d.overdue), None)


def falling_due(first_contact: datetime, level: int, now: datetime, horizon: timedelta, cfg) -> list[Deadline]:
    """The deadlines the complaint faces that fall after `now` and no later than `now + horizon`."""
    return [d for d in facing(first_contact, level, now, cfg) if now < d.due <= now + horizon]


def offsets(cfg) -> dict[str, timedelta]:
    """Each clock deadline's distance from first contact: the SQL side counts complaints by first
    contact with them instead of loading each one."""
    due = policy.deadlines(_ANY_MOMENT, cfg)
    return {name: due[key] - _ANY_MOMENT for name, key, _below in CLOCK}


def outcomes(first_contact: datetime, status: str, resolved_at: datetime | None, now: datetime,
             cfg) -> list[Outcome]:
    """Each promised deadline: met (settled in time), missed (passed unsettled, or settled late)
    or still ahead."""
    due = policy.deadlines(first_contact, cfg)
    done_at = resolved_at if status in SETTLED else None
    out = []
    for key, label in PROMISES:
        when = due[key]
        if done_at and done_at <= when:
            state = "met"
        elif now >= when:
            state = "missed"
        else:
            state = "ahead"
        out.append(Outcome(key, label, when, state))
    return out


def missable_before(now: datetime, cfg) -> datetime:
    """No complaint first contacted after this moment can have missed a promised deadline by `now`."""
    due = policy.deadlines(now, cfg)
    return now - (min(due[key] for key, _label in PROMISES) - now)
