"""core/sending.py: how many due rows go in a batch, the back-off, and when an unforeseen
error on one row becomes its permanent failure."""
from __future__ import annotations

from datetime import timedelta

import pytest

from maildesk.core.sending import (FIRST, LAST, MAX_UNEXPECTED_ATTEMPTS, OTHER, PermFail, Sent, TempFail,
                                   backoff, final, may_go)


@pytest.mark.parametrize("rows, limit, sent, reserve, probing, go", [
    ([(FIRST, 1)] * 3, None, 10_000, 50, False, 3),          # no daily limit: all
    ([(FIRST, 1)] * 3, 0, 10_000, 50, False, 3),              # a limit of 0 means none set
    ([(OTHER, 1)] * 5, 10, 4, 3, False, 3),                   # 6 left, 3 of them kept for first answers
    ([(FIRST, 1)] * 5, 10, 4, 3, False, 5),                   # first answers may use the reserve
    ([(FIRST, 1), (LAST, 2)], 500, 0, 50, True, 1),           # a probe while paused: one mail
    ([], 500, 0, 50, True, 0),                                # a probe with nothing due: none
    ([(OTHER, 4)], 10, 8, 0, True, 0),                        # a probe still respects the limit
])
def test_may_go(rows, limit, sent, reserve, probing, go):
    assert may_go(rows, limit, sent, reserve, probing) == go


def test_backoff_doubles_from_30_seconds_up_to_an_hour():
    assert [backoff(n) for n in (0, 1, 2, 3)] == [timedelta(seconds=30), timedelta(seconds=30),
                                                  timedelta(seconds=60), timedelta(seconds=120)]
    assert backoff(7) == timedelta(seconds=1920) and backoff(8) == timedelta(hours=1)
    assert backoff(20) == timedelta(hours=1)


def test_an_unforeseen_error_fails_the_row_at_the_last_try_only():
    odd = TempFail("unexpected KeyError: 'x'", unexpected=True)
    assert final(odd, MAX_UNEXPECTED_ATTEMPTS - 1) is odd
    failed = final(odd, MAX_UNEXPECTED_ATTEMPTS)
    assert isinstance(failed, PermFail) and failed.reason.endswith(f"(gave up after {MAX_UNEXPECTED_ATTEMPTS} tries)")


def test_other_outcomes_are_stored_as_they_are_however_often_a_row_was_tried():
    busy = TempFail("421 busy", stop=True)
    for outcome in (Sent(), busy, PermFail("550 no such user")):
        assert final(outcome, MAX_UNEXPECTED_ATTEMPTS + 3) is outcome
