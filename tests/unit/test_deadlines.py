"""Which deadline applies now (core/deadlines.py): the same answer for `status`, `show`,
`list --overdue` and the digest, and the same moments at which the policy's clock acts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maildesk.core import deadlines, policy
from maildesk.core.policy import Complaint
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
S = timedelta(seconds=1)


def test_the_deadlines_a_complaint_faces_depend_on_its_level():
    assert [(d.name, d.due) for d in deadlines.facing(T0, 1, T0, CFG)] == [
        ("24h", T0 + 24 * H), ("48h", T0 + 48 * H), ("5d", T0 + 120 * H)]
    assert [d.name for d in deadlines.facing(T0, 2, T0, CFG)] == ["48h", "5d"]
    assert [d.name for d in deadlines.facing(T0, 3, T0, CFG)] == ["5d"]


def test_the_one_that_applies_is_the_first_not_yet_passed():
    assert deadlines.applying(T0, 1, T0 + 23 * H, CFG) == deadlines.Deadline("24h", T0 + 24 * H, False)
    assert deadlines.applying(T0, 1, T0 + 24 * H, CFG).name == "48h"  # due at that very moment: passed
    assert deadlines.applying(T0, 3, T0 + 30 * H, CFG).name == "5d"
    assert deadlines.applying(T0, 1, T0 + 120 * H, CFG) is None
    overdue = [d.name for d in deadlines.facing(T0, 1, T0 + 50 * H, CFG) if d.overdue]
    assert overdue == ["24h", "48h"]


def test_falling_due_keeps_those_after_now_and_within_the_horizon():
    now = T0 + 30 * H
    assert [d.name for d in deadlines.falling_due(T0, 1, now, 24 * H, CFG)] == ["48h"]
    assert deadlines.falling_due(T0, 1, now, 18 * H - S, CFG) == []
    assert [d.name for d in deadlines.falling_due(T0, 1, now, 18 * H, CFG)] == ["48h"]  # exactly at the edge
    assert deadlines.falling_due(T0, 3, now, 24 * H, CFG) == []  # the 48 h step is not a level 3's


def test_offsets_are_the_distance_from_first_contact():
    assert deadlines.offsets(CFG) == {"24h": 24 * H, "48h": 48 * H, "5d": 120 * H}
    cfg = make_config(policy={"escalate_to_resolution_hours": 8, "escalate_to_experience_hours": 30,
                              "resolution_target_days": 3})
    assert deadlines.offsets(cfg) == {"24h": 8 * H, "48h": 30 * H, "5d": 72 * H}


@pytest.mark.parametrize("level", [1, 2, 3])
def test_the_clock_acts_at_the_moment_a_facing_deadline_falls_due(level):
    """The deadlines screens show are the policy's own: a sweep one second before each one a
    complaint faces does not act on it, a sweep at it does; a deadline it does not face moves nothing."""
    acts = {"24h": ("escalated", "24h"), "48h": ("escalated", "48h"), "5d": ("target_missed", None)}
    complaint = Complaint("IMO-X", "c@example.fr", "fr", level, "open", T0, auto_level=level)
    faced = {d.name: d.due for d in deadlines.facing(T0, level, T0, CFG)}
    for name, due in deadlines.offsets(CFG).items():
        kind, reason = acts[name]

        def acted(at):
            return [e for e in policy.sweep(complaint, at, CFG).events
                    if e.kind == kind and e.detail.get("reason") == reason]
        if name in faced:
            assert faced[name] == T0 + due
            assert not acted(T0 + due - S) and acted(T0 + due)
        else:
            assert not acted(T0 + due)


def test_outcomes_say_met_missed_or_ahead():
    def states(status, resolved_at, now):
        return {o.deadline: o.state for o in deadlines.outcomes(T0, status, resolved_at, now, CFG)}
    assert states("open", None, T0 + H) == {"resolution_team": "ahead", "findings": "ahead", "target": "ahead"}
    assert states("open", None, T0 + 50 * H) == {"resolution_team": "missed", "findings": "missed", "target": "ahead"}
    assert states("resolved", T0 + 30 * H, T0 + 200 * H) == {
        "resolution_team": "missed", "findings": "met", "target": "met"}
    # a resolved_at left on a complaint open again does not count as done
    assert states("open", T0 + H, T0 + 30 * H)["resolution_team"] == "missed"
    assert states("closed", T0 + H, T0 + 30 * H)["resolution_team"] == "met"
    [first] = [o for o in deadlines.outcomes(T0, "open", None, T0, CFG) if o.deadline == "resolution_team"]
    assert first.due == T0 + 24 * H and first.label.startswith("24 h")


def test_nothing_first_contacted_after_missable_before_can_have_missed_a_deadline():
    now = T0 + 100 * H
    edge = deadlines.missable_before(now, CFG)
    assert edge == now - 24 * H
    assert all(o.state != "missed" for o in deadlines.outcomes(edge + S, "open", None, now, CFG))
    assert any(o.state == "missed" for o in deadlines.outcomes(edge, "open", None, now, CFG))
