"""core/retention.py: anonymised exactly when the retention period has passed, never a day before."""
from datetime import datetime, timedelta, timezone

from maildesk.core import retention

NOW = datetime(2029, 12, 1, 3, 0, tzinfo=timezone.utc)
DAYS = 1095


def test_a_closed_complaint_is_due_exactly_at_the_limit_and_not_a_second_before():
    last = NOW - timedelta(days=DAYS)
    assert retention.complaint_due("closed", last, NOW, DAYS)
    assert not retention.complaint_due("closed", last + timedelta(seconds=1), NOW, DAYS)
    assert not retention.complaint_due("closed", NOW - timedelta(days=DAYS - 1), NOW, DAYS)


def test_open_and_resolved_complaints_are_never_due_however_old():
    ancient = NOW - timedelta(days=10 * DAYS)
    for status in ("open", "waiting_customer", "resolved"):
        assert not retention.complaint_due(status, ancient, NOW, DAYS)
    for status in ("closed", "merged", "imported"):
        assert retention.complaint_due(status, ancient, NOW, DAYS)
    assert not retention.complaint_due("closed", None, NOW, DAYS)


def test_a_seller_goes_only_terminated_quiet_and_unnamed_by_open_complaints():
    old = NOW - timedelta(days=DAYS + 1)
    assert retention.seller_due("terminated", old, 0, NOW, DAYS)
    assert not retention.seller_due("terminated", old, 1, NOW, DAYS)
    assert not retention.seller_due("restricted", old, 0, NOW, DAYS)
    assert not retention.seller_due("terminated", NOW - timedelta(days=DAYS - 1), 0, NOW, DAYS)


def test_next_batch_falls_due_at_the_oldest_waiting_plus_the_period():
    oldest = datetime(2027, 3, 4, 10, 0, tzinfo=timezone.utc)
    assert retention.next_due(oldest, DAYS) == oldest + timedelta(days=DAYS)
    assert retention.next_due(None, DAYS) is None


def test_the_file_is_scrubbed_once_a_day_after_the_hour_and_only_when_something_went():
    night = datetime(2029, 12, 1, 3, 30)
    assert retention.scrub_due(night, "03:30", "2029-11-30", 5)
    assert not retention.scrub_due(night - timedelta(minutes=1), "03:30", "2029-11-30", 5)
    assert not retention.scrub_due(night, "03:30", "2029-12-01", 5)  # done today already
    assert not retention.scrub_due(night, "03:30", None, 0)  # nothing anonymised since
    assert retention.scrub_due(night + timedelta(hours=20), "03:30", None, 1)  # a missed night catches up
