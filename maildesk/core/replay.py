"""Where a complaint stood (open or not, which level) at any past moment, folded from its state
changes in the audit trail, so the digest can show a date's numbers and a 14-day backlog trend
without keeping daily snapshots. Plain rows in, no database: `store/history.py` reads them."""
from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from maildesk.core.policy import OPEN_STATUSES

CLOSING = ("resolved", "closed")
LEVEL_KINDS = ("escalated", "level_lowered")
CHANGE_KINDS = (*CLOSING, "reopened", *LEVEL_KINDS)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass
class Past:
    """One complaint's (time, open, level) steps, oldest first."""
    row: dict
    times: list[datetime] = field(default_factory=list)
    states: list[tuple[bool, int]] = field(default_factory=list)

    def at(self, moment: datetime) -> tuple[bool, int] | None:
        """(open?, level) at `moment`; None before first contact."""
        i = bisect_right(self.times, moment)
        return self.states[i - 1] if i else None


def replay(row: dict, events) -> Past:
    """Fold a complaint row (first_contact, status, level, resolved_at, closed_at as stored) and its
    state-change events (at, kind, detail JSON), oldest first, into its steps."""
    past = Past(row)
    start = _time(row["first_contact"])
    if not events and (row["status"] not in OPEN_STATUSES or row["level"] != 1):
        # no audit trail (imported or hand-made rows): trust the row itself
        past.times.append(start)
        past.states.append((True, row["level"]))
        end = _time(row["closed_at"] or row["resolved_at"])
        if row["status"] not in OPEN_STATUSES and end:
            past.times.append(max(end, start))
            past.states.append((False, row["level"]))
        return past
    is_open, level = True, 1
    past.times.append(start)
    past.states.append((is_open, level))
    for ev in events:
        if ev["kind"] in CLOSING:
            is_open = False
        elif ev["kind"] == "reopened":
            is_open = True
        else:
            level = int(json.loads(ev["detail"] or "{}").get("level", level))
        at = max(_time(ev["at"]), start)
        if past.times[-1] == at:
            past.states[-1] = (is_open, level)
        else:
            past.times.append(at)
            past.states.append((is_open, level))
    return past


def open_at(pasts: list[Past], moment: datetime) -> list[tuple[dict, int]]:
    """(complaint row, level) for each complaint open at `moment`."""
    out = []
    for p in pasts:
        state = p.at(moment)
        if state and state[0]:
            out.append((p.row, state[1]))
    return out


def backlog(pasts: list[Past], moment: datetime) -> dict[int, int]:
    counts = {1: 0, 2: 0, 3: 0}
    for _row, level in open_at(pasts, moment):
        counts[level] = counts.get(level, 0) + 1
    return counts
