"""A complaint's past rebuilt from its row and its state changes (core/replay.py): what the
digest's trend and backlog count."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from maildesk.core import replay

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def row(status="open", level=1, resolved_at=None, closed_at=None):
    return {"ref": "IMO-X", "first_contact": T0.isoformat(), "status": status, "level": level,
            "resolved_at": resolved_at and resolved_at.isoformat(), "closed_at": closed_at and closed_at.isoformat()}


def ev(at, kind, **detail):
    return {"at": at.isoformat(), "kind": kind, "detail": json.dumps(detail)}


def test_state_changes_fold_into_open_and_level():
    past = replay.replay(row("open", 2), [ev(T0 + 24 * H, "escalated", level=2), ev(T0 + 30 * H, "resolved"),
                                          ev(T0 + 40 * H, "reopened")])
    assert past.at(T0 - H) is None  # before first contact
    assert past.at(T0) == (True, 1)
    assert past.at(T0 + 24 * H) == (True, 2)
    assert past.at(T0 + 35 * H) == (False, 2)
    assert past.at(T0 + 41 * H) == (True, 2)


def test_a_level_change_without_a_level_keeps_the_level():
    past = replay.replay(row(), [ev(T0 + H, "escalated", level=3), ev(T0 + 2 * H, "level_lowered")])
    assert past.at(T0 + 3 * H) == (True, 3)


def test_changes_at_the_same_second_make_one_step_and_early_ones_count_at_first_contact():
    past = replay.replay(row(), [ev(T0 - 5 * H, "escalated", level=3), ev(T0 + H, "resolved"), ev(T0 + H, "reopened")])
    assert past.times == [T0, T0 + H] and past.states == [(True, 3), (True, 3)]


def test_without_an_audit_trail_the_row_is_trusted():
    past = replay.replay(row("resolved", 2, resolved_at=T0 + 10 * H), [])
    assert past.at(T0 + H) == (True, 2) and past.at(T0 + 10 * H) == (False, 2)
    closed_early = replay.replay(row("closed", 1, closed_at=T0 - H), [])  # settled "before" first contact
    assert closed_early.at(T0) == (False, 1)
    never_closed = replay.replay(row("closed", 3), [])  # closed, but when?
    assert never_closed.at(T0 + 100 * H) == (True, 3)
    fresh = replay.replay(row("open", 1), [])  # a new complaint: level 1, open
    assert fresh.at(T0 + H) == (True, 1)


def test_backlog_counts_the_open_ones_by_level():
    pasts = [replay.replay(row(), []), replay.replay(row(), [ev(T0 + H, "escalated", level=2)]),
             replay.replay(row(), [ev(T0 + H, "resolved")])]
    assert replay.backlog(pasts, T0 + 2 * H) == {1: 1, 2: 1, 3: 0}
    assert [level for _row, level in replay.open_at(pasts, T0)] == [1, 1, 1]
