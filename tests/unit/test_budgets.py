"""The sending budget outsiders cannot spend (budgets.py) and the party rule for automatic mail
(threads.choose_automatic): pure decisions."""
from datetime import datetime, timedelta, timezone

from maildesk.core import budgets, threads

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def test_a_mailbox_under_its_caps_is_answered_and_notified_one_by_one():
    assert budgets.new_complaint(0, 0, False, 5) == budgets.Intake(True, True, False)
    assert budgets.new_complaint(4, 19, False, 5) == budgets.Intake(True, True, False)


def test_past_the_hourly_or_daily_cap_it_is_held_and_the_flood_reported_once_an_hour():
    assert budgets.new_complaint(5, 5, False, 5) == budgets.Intake(False, False, True)
    assert budgets.new_complaint(5, 5, True, 5) == budgets.Intake(False, False, False)
    # four hours' worth of acknowledgements in 24 h: the slow flood is held too
    assert budgets.new_complaint(0, 20, False, 5) == budgets.Intake(False, False, True)


def test_a_coalesced_notice_goes_at_once_then_once_an_hour():
    assert budgets.mail_now(None, NOW)
    assert not budgets.mail_now(NOW - timedelta(minutes=59), NOW)
    assert budgets.mail_now(NOW - timedelta(hours=1), NOW)
    assert not budgets.summary_due(NOW - timedelta(hours=2), None, NOW)  # nothing waits
    assert not budgets.summary_due(NOW - timedelta(minutes=10), NOW - timedelta(minutes=5), NOW)
    assert budgets.summary_due(NOW - timedelta(hours=1), NOW - timedelta(minutes=5), NOW)


VICTIM = {"id": 1, "ref": "IMO-AAAAAA", "customer_addr": "victim@example.fr"}
OTHER = {"id": 2, "ref": "IMO-BBBBBB", "customer_addr": "other@example.fr"}


def test_automatic_mail_joins_through_our_message_id_or_as_a_party_only():
    # a tag or reply header alone, from a stranger: not enough
    assert threads.choose_automatic("attacker@evil.test", False, [], [VICTIM]) is None
    # bouncing or answering a mail of ours: joins, whoever sends it (MAILER-DAEMON is no party)
    assert threads.choose_automatic("mailer-daemon@mx.example", False, [VICTIM], []) is VICTIM
    assert threads.choose_automatic("attacker@evil.test", False, [OTHER], [VICTIM]) is OTHER
    # a party's own out-of-office: its customer, staff, the linked seller
    assert threads.choose_automatic("victim@example.fr", False, [], [OTHER, VICTIM]) is VICTIM
    assert threads.choose_automatic("cs@imolocale.test", True, [], [VICTIM]) is VICTIM
    assert threads.choose_automatic("shop@seller.example", False, [], [VICTIM], {1: "shop@seller.example"}) is VICTIM
    assert threads.choose_automatic("shop@seller.example", False, [], [VICTIM], {2: "shop@seller.example"}) is None


def test_automatic_mail_to_one_mailbox_stops_at_the_hourly_cap():
    assert not budgets.echo_suppressed("update", True, 4, 5)
    assert budgets.echo_suppressed("update", True, 5, 5)
    assert not budgets.echo_suppressed("ack", True, 9, 5)  # bounded by new_complaint instead
    assert not budgets.echo_suppressed("relay", False, 9, 5)  # staff wrote it
