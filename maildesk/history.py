"""Where each complaint stood (open or not, which level) at any past moment,
rebuilt from the audit trail, so the digest can show a date's numbers and
a 14-day backlog trend without keeping daily snapshots."""
from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from .store import Store, from_iso, iso

OPEN_STATUSES = ("open", "waiting_customer")
CLOSING = ("resolved", "closed")
LEVEL_KINDS = ("escalated", "level_lowered")


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


def load(store: Store, since: datetime, until: datetime) -> list[Past]:
    """Every complaint that may have been open between `since` and `until`.

    A complaint resolved or closed before `since` and still so is left out:
    its last change (resolved_at / closed_at) is its last state change."""
    maybe_open = ("FROM complaints WHERE first_contact <= ? AND (status IN ('open', 'waiting_customer') "
                  "OR COALESCE(closed_at, resolved_at, first_contact) >= ?)")
    rows = store.all("SELECT id, ref, subject, first_contact, status, level, resolved_at, closed_at "
                     + maybe_open, iso(until), iso(since))
    if not rows:
        return []
    changes: dict[int, list] = {}
    kinds = (*CLOSING, "reopened", *LEVEL_KINDS)
    marks = ", ".join("?" for _ in kinds)
    for ev in store.all(f"SELECT complaint_id, at, kind, detail FROM events WHERE kind IN ({marks}) "
                        f"AND at <= ? AND complaint_id IN (SELECT id {maybe_open}) ORDER BY at, id",
                        *kinds, iso(until), iso(until), iso(since)):
        changes.setdefault(ev["complaint_id"], []).append(ev)
    return [_replay(dict(r), changes.get(r["id"], [])) for r in rows]


def _replay(row: dict, events) -> Past:
    past = Past(row)
    start = from_iso(row["first_contact"])
    if not events and (row["status"] not in OPEN_STATUSES or row["level"] != 1):
        # no audit trail (imported or hand-made rows): trust the row itself
        past.times.append(start)
        past.states.append((True, row["level"]))
        end = from_iso(row["closed_at"] or row["resolved_at"])
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
        at = max(from_iso(ev["at"]), start)
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
