"""core/retention.mailbox_due: maildesk's IMAP folders are swept once a local day, after `at`."""
from datetime import datetime

from maildesk.core import retention


def test_once_a_day_after_the_hour_and_again_while_a_pass_left_mail_behind():
    night = datetime(2029, 12, 1, 3, 30)
    assert retention.mailbox_due(night, "03:30", None)
    assert retention.mailbox_due(night, "03:30", "2029-11-30")
    assert not retention.mailbox_due(night, "03:30", "2029-12-01")  # done today
    assert not retention.mailbox_due(datetime(2029, 12, 1, 3, 29), "03:30", "2029-11-30")  # not yet
    assert retention.mailbox_due(datetime(2029, 12, 1, 23, 59), "03:30", "2029-11-30")  # the daemon was down at night
