"""The customer's Cc (issue 16): who is kept on a complaint, who a staff reply copies, who is a
party, and what a party's message may do (core/parties.py)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from maildesk.core import parties, policy, threads
from maildesk.core.robots import CUSTOMER
from tests.support import SUPPORT, make_config

CFG = make_config(teams={"domains": ["imolocale.test"]})
CUSTOMER_ADDR = "camille@example.fr"
SELLERS = frozenset({"contact@boutique.example"})
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def pick(offered, known=(), **kw):
    return parties.customer_cc(known, offered, CFG, SELLERS, CUSTOMER_ADDR, **kw)


def test_a_partner_in_cc_is_kept():
    assert pick(["paul@example.fr"]).kept == ("paul@example.fr",)


def test_our_own_address_and_its_aliases_are_never_kept():
    picked = pick([SUPPORT, "Support+ventes@imolocale.test", "paul@example.fr"])
    assert picked.kept == ("paul@example.fr",)
    assert {why for _, why in picked.dropped} == {"our own address"}


def test_staff_staff_domains_sellers_and_the_customer_are_refused():
    picked = pick(["cs@imolocale.test", "someone@sub.imolocale.test", "Contact@Boutique.example",
                   "Camille+x@example.fr", "paul@example.fr"])
    assert picked.kept == ("paul@example.fr",)
    assert dict(picked.dropped) == {"cs@imolocale.test": "staff", "someone@sub.imolocale.test": "staff",
                                    "Contact@Boutique.example": "a seller", "Camille+x@example.fr": "the customer herself"}


def test_unsendable_addresses_are_refused_with_why():
    picked = pick(["paul@localhost", "a b@example.fr"])
    assert picked.kept == ()
    assert all(why for _, why in picked.dropped) and len(picked.dropped) == 2


def test_one_entry_per_mailbox_and_known_ones_first():
    picked = pick(["Paul+home@example.fr", "lea@example.fr"], known=["paul@example.fr"])
    assert picked.kept == ("paul@example.fr", "lea@example.fr")
    assert picked.added == ("lea@example.fr",)


def test_past_the_limit_the_first_are_kept_and_the_rest_dropped_with_why():
    offered = [f"p{i}@example.fr" for i in range(14)]
    picked = pick(offered)
    assert picked.kept == tuple(offered[:parties.MAX_CC])
    assert [a for a, _ in picked.dropped] == offered[parties.MAX_CC:]
    assert all("more than 10" in why for _, why in picked.dropped)


def test_a_staff_reply_copies_its_own_cc_but_not_colleagues_nor_what_is_already_copied():
    picked = parties.relay_cc(["cx@imolocale.test", "paul@example.fr", "marc@example.fr", CUSTOMER_ADDR, SUPPORT],
                              ["paul@example.fr"], CFG, SELLERS, CUSTOMER_ADDR)
    assert picked.kept == ("marc@example.fr",)


def test_stored_reads_the_json_list_and_survives_nonsense():
    assert parties.stored({"cc_addrs": json.dumps(["paul@example.fr"])}) == ("paul@example.fr",)
    assert parties.stored({"cc_addrs": None}) == ()
    assert parties.stored({"cc_addrs": "{not json"}) == ()
    assert parties.stored({"cc_addrs": '{"a": 1}'}) == ()
    assert parties.stored({}) == ()


def test_a_party_threads_to_the_complaint_and_a_stranger_does_not():
    row = {"id": 1, "customer_addr": CUSTOMER_ADDR, "cc_addrs": json.dumps(["paul@example.fr"])}
    assert threads.choose("Paul@example.fr", CUSTOMER, [row], []) is row
    assert threads.choose("mallory@example.fr", CUSTOMER, [row], []) is None
    assert threads.choose_automatic("paul@example.fr", False, [], [row]) is row  # an out-of-office: kept there


def complaint(status="resolved", **kw):
    return policy.Complaint(ref="IMO-4K7M2Q", customer_addr=CUSTOMER_ADDR, lang="fr", level=1, status=status,
                            first_contact=NOW, satisfaction_asked_at=NOW if status == "resolved" else None, **kw)


def test_a_partys_5_of_5_is_news_not_a_rating_and_closes_nothing():
    d = parties.party_message(complaint("resolved"), NOW, CFG, "paul@example.fr")
    assert "rating" not in d.changes and "status" not in d.changes
    assert [e.kind for e in d.events] == ["party_wrote"]
    assert [(m.template, m.audience, m.context["party"]) for m in d.mails] == [("staff_reply", "staff", "paul@example.fr")]
    # the customer's own "5/5" is a rating
    assert policy.customer_message(complaint("resolved"), NOW, CFG, "5/5").changes["rating"] == 5


def test_a_partys_answer_to_a_question_ends_the_wait():
    d = parties.party_message(complaint("waiting_customer"), NOW, CFG, "paul@example.fr")
    assert d.changes["status"] == "open"


def test_failed_recipients_of_a_delivery_report_and_only_cc_ones_are_dropped():
    text = "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; <Paul@example.fr>\nAction: failed\n"
    failed = parties.failed_recipients(text, [("X-Failed-Recipients", "lea@example.fr")])
    assert set(failed) == {"paul@example.fr", "lea@example.fr"}
    row = {"cc_addrs": json.dumps(["Paul@example.fr", "marc@example.fr"]), "customer_addr": CUSTOMER_ADDR}
    assert parties.failed_cc(row, failed) == ("Paul@example.fr",)
    assert parties.failed_cc(row, [CUSTOMER_ADDR]) == ()
