"""The audit trail read for the digest's past: which complaints may have been open in a window
(`since` to `until`), in two parts that together hold every one of them. The folding of state
changes is the core's (`core/replay.py`); this module only chooses and reads the rows.

The digest runs on the daemon's clock, over however many complaints there are:

- `changing`: complaints whose state changes inside the window (a state change in the audit trail
  there, or resolved/closed per their row with no audit trail), replayed one by one in Python. As
  many as the window's activity, whatever the size of the database.
- `steady_groups` / `steady_soonest`: every other one, in SQL only. Each is open at one level from
  its first contact to beyond `until` (or never open in the window): the digest counts them with
  aggregates instead of loading them.

Both follow the same rules as a full replay (`core.replay.replay`) of every complaint.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.core.replay import CHANGE_KINDS, CLOSING, LEVEL_KINDS, Past, replay
from maildesk.store.db import Store, from_iso, iso
from maildesk.store.sql import OPEN_IN, sql_list

# The WHERE of the partial index `events_changes` (store migration 5), term for term: SQLite uses a
# partial index only for a query that repeats its condition.
CHANGES = f"e.kind IN {sql_list(CHANGE_KINDS)}"

# The complaints that may have been open between :since and :until: a complaint resolved or closed
# before :since and still so is left out (resolved_at / closed_at is its last state change). Written
# so that SQLite reads the open ones by status and the settled ones by complaints_settled (SETTLED is
# that partial index's WHERE), not every complaint: `+` keeps it off the first-contact index.
SETTLED = f"c.status NOT IN {OPEN_IN}"
_SETTLED_SINCE = f"{SETTLED} AND COALESCE(c.closed_at, c.resolved_at, c.first_contact) >= :since"
MAYBE_OPEN = f"+c.first_contact <= :until AND (c.status IN {OPEN_IN} OR ({_SETTLED_SINCE}))"
_ROW_END = "COALESCE(NULLIF(c.closed_at, ''), NULLIF(c.resolved_at, ''))"  # Python's `closed_at or resolved_at`
_COLUMNS = "c.id, c.ref, c.subject, c.first_contact, c.status, c.level, c.resolved_at, c.closed_at"


@dataclass(frozen=True)
class SteadyGroup:
    """How many steady complaints are open at `level` (None: never open in the window), by first
    contact; `first_contact` None: at or before the `old` moment given, told apart no further."""
    first_contact: datetime | None
    level: int | None
    n: int


@dataclass(frozen=True)
class SteadyComplaint:
    ref: str
    subject: str
    first_contact: datetime
    level: int


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
    return [replay(dict(r), events.get(r["id"], [])) for r in rows]


def _last(what: str, kinds: tuple[str, ...], extra: str = "") -> str:
    """SQL: `what` of the complaint's latest state change of one of `kinds` up to :until, NULL if none."""
    return (f"(SELECT {what} FROM events e WHERE e.complaint_id = c.id AND {CHANGES} "
            f"AND e.kind IN {sql_list(kinds)} AND e.at <= :until{extra} ORDER BY e.at DESC, e.id DESC LIMIT 1)")


_LEVEL_JSON = "json_extract(NULLIF(e.detail, ''), '$.level')"
# NULL: no state change up to :until; 0: the last one before :since; 1: one inside the window
_CHANGED_IN_WINDOW = ("(SELECT CASE WHEN max(e.at) > :since THEN 1 WHEN max(e.at) IS NOT NULL THEN 0 END "
                      f"FROM events e WHERE e.complaint_id = c.id AND {CHANGES} AND e.at <= :until)")
# open or not, and the level, after every state change up to :until (as `replay` folds them)
_OPEN_AFTER = ("COALESCE(" + _last("CASE WHEN e.kind = 'reopened' THEN 1 ELSE 0 END", (*CLOSING, "reopened"))
               + ", 1)")  # 1 or 0, not a boolean: PostgreSQL keeps the two apart
_LEVEL_AFTER = ("COALESCE(" + _last(f"CAST({_LEVEL_JSON} AS INTEGER)", LEVEL_KINDS, f" AND {_LEVEL_JSON} IS NOT NULL")
                + ", 1)")
# The level at which a complaint is open from its first contact to beyond :until; NULL when it is
# `changing`'s (a state change inside the window, or settled per its row) or never open in the window.
STEADY_LEVEL = (f"CASE {_CHANGED_IN_WINDOW} "
                f"WHEN 0 THEN CASE WHEN {_OPEN_AFTER} = 1 THEN {_LEVEL_AFTER} END "  # all before the window
                "WHEN 1 THEN NULL "
                # no audit trail: the row itself
                f"ELSE CASE WHEN c.status IN {OPEN_IN} OR {_ROW_END} IS NULL THEN c.level END END")

# The complaints that may have been open in the window and that `changing` leaves out (parameters
# :since and :until), each with the level it is open at throughout, NULL when it counts for nothing.
_STEADY = (f"SELECT c.id, c.ref, c.subject, c.first_contact, {STEADY_LEVEL} AS level "
           f"FROM complaints c WHERE {MAYBE_OPEN}")


def steady_groups(store: Store, since: datetime, until: datetime, old: datetime) -> list[SteadyGroup]:
    """The steady complaints counted by (first contact, level), those first contacted at or before
    `old` in one group per level."""
    rows = store.conn.execute(
        f"SELECT CASE WHEN first_contact > :old THEN first_contact END AS first_contact, level, count(*) AS n "
        f"FROM ({_STEADY}) AS steady GROUP BY 1, 2", {**_window(since, until), "old": iso(old)})
    return [SteadyGroup(from_iso(r["first_contact"]), r["level"], r["n"]) for r in rows]


def steady_soonest(store: Store, since: datetime, until: datetime, below: int | None,
                   after: datetime, before: datetime, limit: int) -> list[SteadyComplaint]:
    """The first `limit` steady complaints open below level `below` (None: any) first contacted
    after `after` and no later than `before`, in first-contact order."""
    rows = store.conn.execute(
        f"SELECT ref, subject, first_contact, level FROM ({_STEADY}) AS steady "
        f"WHERE level {'IS NOT NULL' if below is None else '< :below'} "
        "AND first_contact > :after AND first_contact <= :before ORDER BY first_contact, ref LIMIT :limit",
        {**_window(since, until), "below": below, "after": iso(after), "before": iso(before), "limit": limit})
    return [SteadyComplaint(r["ref"], r["subject"], from_iso(r["first_contact"]), r["level"]) for r in rows]
