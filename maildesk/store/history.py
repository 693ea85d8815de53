"""Where each complaint stood (open or not, which level) at any past moment,
rebuilt from the audit trail, so the digest can show a date's numbers and
a 14-day backlog trend without keeping daily snapshots.

The digest runs on the daemon's clock, over however many complaints there
are, so a window (`since` to `until`) is read in two parts that together
hold every complaint that may have been open in it:

- `changing`: complaints whose state changes inside the window (a state
  change in the audit trail there, or resolved/closed per their row with no
  audit trail), replayed one by one in Python. As many as the window's
  activity, whatever the size of the database.
- `steady_sql`: every other one, in SQL only. Each is open at one level from
  its first contact to beyond `until` (or never open in the window): the
  digest counts them with aggregates instead of loading them.

Both follow the same rules as a full replay (`_replay`) of every complaint.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from maildesk.core.policy import OPEN_STATUSES
from maildesk.store.db import Store, from_iso, iso

CLOSING = ("resolved", "closed")
LEVEL_KINDS = ("escalated", "level_lowered")
CHANGE_KINDS = (*CLOSING, "reopened", *LEVEL_KINDS)


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"  # our own constants, never user input


_OPEN = _sql_list(OPEN_STATUSES)
# The WHERE of the partial index `events_changes` (store migration 5), term for term: SQLite uses a
# partial index only for a query that repeats its condition.
CHANGES = f"e.kind IN {_sql_list(CHANGE_KINDS)}"

# The complaints that may have been open between :since and :until: a complaint resolved or closed
# before :since and still so is left out (resolved_at / closed_at is its last state change). Written
# so that SQLite reads the open ones by status and the settled ones by complaints_settled (SETTLED is
# that partial index's WHERE), not every complaint: `+` keeps it off the first-contact index.
SETTLED = f"c.status NOT IN {_OPEN}"
_SETTLED_SINCE = f"{SETTLED} AND COALESCE(c.closed_at, c.resolved_at, c.first_contact) >= :since"
MAYBE_OPEN = f"+c.first_contact <= :until AND (c.status IN {_OPEN} OR ({_SETTLED_SINCE}))"
_ROW_END = "COALESCE(NULLIF(c.closed_at, ''), NULLIF(c.resolved_at, ''))"  # Python's `closed_at or resolved_at`
_COLUMNS = "c.id, c.ref, c.subject, c.first_contact, c.status, c.level, c.resolved_at, c.closed_at"


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


def _window(since: datetime, until: datetime) -> dict:
    return {"since": iso(since), "until": iso(until)}


def changing(store: Store, since: datetime, until: datetime) -> list[Past]:
    """The complaints that may have been open in the window and whose state changes in it, replayed:
    those with a state change in the audit trail between `since` and `until`, and those with no audit
    trail that their row says were resolved or closed (since `since`, or they would not be here)."""
    window = _window(since, until)
    # CROSS JOIN: from the few complaints changed in the window to their rows and state changes,
    # never through every state change in the database
    changed = (f"WITH changed(id) AS (SELECT DISTINCT e.complaint_id FROM events e WHERE {CHANGES} "
               "AND e.at > :since AND e.at <= :until) ")
    rows = store.conn.execute(
        f"{changed}SELECT {_COLUMNS} FROM changed CROSS JOIN complaints c ON c.id = changed.id WHERE {MAYBE_OPEN} "
        f"UNION ALL SELECT {_COLUMNS} FROM complaints c WHERE {_SETTLED_SINCE} AND +c.first_contact <= :until "
        f"AND {_ROW_END} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.complaint_id = c.id "
        f"AND {CHANGES} AND e.at <= :until)", window).fetchall()
    if not rows:
        return []
    events: dict[int, list] = {}
    for ev in store.conn.execute(f"{changed}SELECT e.complaint_id, e.at, e.kind, e.detail FROM changed "
                                 f"CROSS JOIN events e ON e.complaint_id = changed.id WHERE {CHANGES} "
                                 "AND e.at <= :until ORDER BY e.at, e.id", window):
        events.setdefault(ev["complaint_id"], []).append(ev)
    return [_replay(dict(r), events.get(r["id"], [])) for r in rows]


def _last(what: str, kinds: tuple[str, ...], extra: str = "") -> str:
    """SQL: `what` of the complaint's latest state change of one of `kinds` up to :until, NULL if none."""
    return (f"(SELECT {what} FROM events e WHERE e.complaint_id = c.id AND {CHANGES} "
            f"AND e.kind IN {_sql_list(kinds)} AND e.at <= :until{extra} ORDER BY e.at DESC, e.id DESC LIMIT 1)")


_LEVEL_JSON = "json_extract(NULLIF(e.detail, ''), '$.level')"
# NULL: no state change up to :until; 0: the last one before :since; 1: one inside the window
_CHANGED_IN_WINDOW = ("(SELECT max(e.at) > :since FROM events e WHERE e.complaint_id = c.id "
                      f"AND {CHANGES} AND e.at <= :until)")
# open or not, and the level, after every state change up to :until (as `_replay` folds them)
_OPEN_AFTER = "COALESCE(" + _last("e.kind = 'reopened'", (*CLOSING, "reopened")) + ", 1)"
_LEVEL_AFTER = ("COALESCE(" + _last(f"CAST({_LEVEL_JSON} AS INTEGER)", LEVEL_KINDS, f" AND {_LEVEL_JSON} IS NOT NULL")
                + ", 1)")
# The level at which a complaint is open from its first contact to beyond :until; NULL when it is
# `changing`'s (a state change inside the window, or settled per its row) or never open in the window.
STEADY_LEVEL = (f"CASE {_CHANGED_IN_WINDOW} "
                f"WHEN 0 THEN CASE WHEN {_OPEN_AFTER} THEN {_LEVEL_AFTER} END "  # all before the window
                "WHEN 1 THEN NULL "
                # no audit trail: the row itself
                f"ELSE CASE WHEN c.status IN {_OPEN} OR {_ROW_END} IS NULL THEN c.level END END")


def steady_sql() -> str:
    """A SELECT (parameters :since and :until) over the complaints that may have been open in the
    window and that `changing` leaves out: id, ref, subject, first_contact and `level` (STEADY_LEVEL).
    A row whose level is NULL counts for nothing."""
    return (f"SELECT c.id, c.ref, c.subject, c.first_contact, {STEADY_LEVEL} AS level "
            f"FROM complaints c WHERE {MAYBE_OPEN}")


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
