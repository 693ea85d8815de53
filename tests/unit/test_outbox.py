"""The outbox's pure decisions: what goes first near the daily limit, which addresses need
SMTPUTF8, and which the SMTP library cannot take as they are."""
from __future__ import annotations

import pytest

from maildesk.core.addresses import smtp_problem
from maildesk.adapters.smtp import needs_smtputf8
from maildesk.core.sending import FIRST, LAST, OTHER, allowance, tier


def test_first_answers_and_staff_answers_to_customers_come_first():
    assert tier("ack", "customer", False) == FIRST
    assert tier("relay", "customer", False) == tier("ask", "customer", False) == FIRST
    assert tier("resolution", "customer", False) == FIRST
    assert tier("notify", "staff", False) == tier("escalation", "customer", False) == OTHER
    assert tier("update", "customer", True) == tier("alert", "admin", False) == tier("digest", "admin", True) == LAST


def rows(*tiers: tuple[int, int]) -> list[tuple[int, int]]:
    """(tier, how many mails), each to one recipient, in sending order."""
    return [(t, 1) for t, n in tiers for _ in range(n)]


@pytest.mark.parametrize("waiting, room, reserve, go", [
    (rows((FIRST, 3), (OTHER, 3), (LAST, 3)), None, 50, 9),   # no limit
    (rows((FIRST, 3), (OTHER, 3), (LAST, 3)), 100, 50, 9),    # far from it
    (rows((LAST, 8)), 10, 3, 7),                              # the reserve is kept
    (rows((FIRST, 2), (OTHER, 5), (LAST, 5)), 6, 3, 3),       # first tier first: 2 first, 1 other, no last
    (rows((FIRST, 5), (OTHER, 5)), 3, 3, 3),                  # only first answers in the reserve
    (rows((FIRST, 5)), 0, 3, 0),                              # never over the limit
    (rows((FIRST, 1), (LAST, 1)), -2, 3, 0),                  # already over: nothing
])
def test_allowance(waiting, room, reserve, go):
    assert allowance(waiting, room, reserve) == go


@pytest.mark.parametrize("waiting, room, reserve, go", [
    ([(FIRST, 1), (OTHER, 4)], 5, 0, 2),             # an ack and a team of 4: 5 recipients
    ([(FIRST, 1), (OTHER, 4)], 4, 0, 1),             # the team's mail does not fit: it waits whole
    ([(OTHER, 4), (LAST, 1)], 5, 2, 0),              # 3 outside the reserve: the team of 4 waits, and so
                                                     # does the 1-recipient digest behind it
    ([(FIRST, 1), (FIRST, 3), (FIRST, 1)], 4, 3, 2),  # first answers keep their order: none jumps ahead
    ([(FIRST, 2), (OTHER, 1)], 3, 1, 1),             # the reserve is counted in recipients too
])
def test_allowance_counts_recipients(waiting, room, reserve, go):
    assert allowance(waiting, room, reserve) == go


def test_internationalized_addresses_need_smtputf8():
    assert needs_smtputf8("support@imolocale.test", ["jörg.müller@exemple.de"])
    assert needs_smtputf8("support@imolocale.test", ["€uro@x.test"])
    assert needs_smtputf8("supp€rt@imolocale.test", ["a@x.test"])
    assert not needs_smtputf8("support@imolocale.test", ["a@x.test", "b@y.test"])


@pytest.mark.parametrize("address", ['bob"smith"@x.test', '"a"."b"@x.test', 'a""b@x.test', "a b@x.test",
                                     "x\x00y@x.test", "a\r\nRCPT TO:<evil@x.test>@x.test", "<a>@x.test",
                                     "a>@x.test"])
def test_addresses_the_smtp_library_cannot_take_as_they_are(address):
    assert smtp_problem(address)


@pytest.mark.parametrize("address", ["camille@example.fr", "jörg.müller@exemple.de", '"a b"@x.test',
                                     "first.last+tag@gmail.com"])
def test_ordinary_addresses_are_fine(address):
    assert smtp_problem(address) is None


def test_saves_to_sent_is_on_by_itself_for_gmail_only():
    from maildesk.config import ConfigError
    from tests.support import make_config
    assert make_config(smtp={"host": "smtp.gmail.com"}).smtp_saves_to_sent
    assert not make_config(smtp={"host": "mail.example.fr"}).smtp_saves_to_sent
    assert make_config(smtp={"host": "mail.example.fr", "saves_to_sent": "yes"}).smtp_saves_to_sent
    assert not make_config(smtp={"host": "smtp.gmail.com", "saves_to_sent": "no"}).smtp_saves_to_sent
    with pytest.raises(ConfigError, match="saves_to_sent"):
        make_config(smtp={"saves_to_sent": "maybe"})
