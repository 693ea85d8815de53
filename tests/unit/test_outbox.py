"""The outbox's pure decisions: what goes first near the daily limit, which addresses need
SMTPUTF8, and which the SMTP library cannot take as they are."""
from __future__ import annotations

import itertools
import sqlite3

import pytest

from maildesk.addresses import smtp_problem
from maildesk.outbox import FIRST, LAST, OTHER, TIER_SQL, allowance, needs_smtputf8, tier


def test_first_answers_and_staff_answers_to_customers_come_first():
    assert tier("ack", "customer", False) == FIRST
    assert tier("relay", "customer", False) == tier("ask", "customer", False) == FIRST
    assert tier("resolution", "customer", False) == FIRST
    assert tier("notify", "staff", False) == tier("escalation", "customer", False) == OTHER
    assert tier("update", "customer", True) == tier("alert", "admin", False) == tier("digest", "admin", True) == LAST


def test_the_sql_rule_agrees_with_tier():
    conn = sqlite3.connect(":memory:")
    kinds = ["ack", "relay", "ask", "resolution", "notify", "update", "alert", "digest", "outreach"]
    for kind, audience, routine in itertools.product(kinds, ["customer", "staff", "admin", "seller"], [0, 1]):
        got = conn.execute(f"SELECT {TIER_SQL} FROM (SELECT ? AS kind, ? AS audience, ? AS routine)",
                           (kind, audience, routine)).fetchone()[0]
        assert got == tier(kind, audience, bool(routine)), (kind, audience, routine)


@pytest.mark.parametrize("waiting, room, reserve, go", [
    ({FIRST: 3, OTHER: 3, LAST: 3}, None, 50, {FIRST: 3, OTHER: 3, LAST: 3}),  # no limit
    ({FIRST: 3, OTHER: 3, LAST: 3}, 100, 50, {FIRST: 3, OTHER: 3, LAST: 3}),   # far from it
    ({LAST: 8}, 10, 3, {LAST: 7}),                                              # the reserve is kept
    ({FIRST: 2, OTHER: 5, LAST: 5}, 6, 3, {FIRST: 2, OTHER: 1, LAST: 0}),      # first tier first
    ({FIRST: 5, OTHER: 5}, 3, 3, {FIRST: 3, OTHER: 0}),                         # only first answers in the reserve
    ({FIRST: 5}, 0, 3, {FIRST: 0}),                                             # never over the limit
    ({FIRST: 1, LAST: 1}, -2, 3, {FIRST: 0, LAST: 0}),                          # already over: nothing
])
def test_allowance(waiting, room, reserve, go):
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
