"""Is this automatic mail, and why: core.robots over plain values (decoded headers by
lower-cased name, the sender's address, the subject, the report kind)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from maildesk.core import robots
from maildesk.core.robots import auto_reason, feedback_type, hotmail_complaint, report_kind

PERSON = "marie.dupont@example.fr"


def h(**headers: str) -> dict[str, list[str]]:
    return {name.replace("_", "-").lower(): [value] for name, value in headers.items()}


def test_a_person_writing_is_no_robot():
    assert auto_reason(h(subject="Absence de remboursement", precedence="normal"), PERSON,
                       "Absence de remboursement", None) is None


@pytest.mark.parametrize("headers, reason", [
    (h(x_failed_recipients="a@b.fr"), "delivery-report"),
    (h(auto_submitted="auto-replied; owner-email=x@y"), "auto-submitted: auto-replied"),
    (h(auto_submitted="AUTO-GENERATED"), "auto-submitted: auto-generated"),
    (h(x_autoreply="yes"), "x-autoreply"),
    (h(x_auto_reply="1"), "x-auto-reply"),
    (h(precedence=" Bulk "), "precedence: bulk"),
    (h(precedence="auto_reply"), "precedence: auto_reply"),
    (h(list_id="<l.example.org>"), "list-id"),
    (h(list_unsubscribe="<mailto:u@l>"), "list-unsubscribe"),
    (h(x_beenthere="l@example.org"), "mailing-list: x-beenthere"),
    (h(return_path="< >"), "return-path: <>"),
])
def test_headers_a_mail_client_never_adds_make_a_robot(headers, reason):
    assert auto_reason(headers, PERSON, "Bonjour", None) == reason


@pytest.mark.parametrize("headers", [
    h(auto_submitted="no"), h(auto_submitted=""), h(x_autoreply="no"), h(x_autoresponder="false"),
    h(precedence="first-class"), h(return_path="<bounce@shop.fr>"),
])
def test_headers_that_say_no_or_nothing_do_not(headers):
    assert auto_reason(headers, PERSON, "Bonjour", None) is None


def test_a_report_in_the_mime_tree_is_the_strongest_evidence():
    assert auto_reason(h(list_id="<l>"), PERSON, "Bonjour", "delivery-report") == "delivery-report"


def test_an_auto_submitted_token_is_one_short_line():
    reason = auto_reason(h(auto_submitted="auto-\t  generated-" + "x" * 80), PERSON, "", None)
    assert reason == "auto-submitted: " + ("auto- generated-" + "x" * 80)[:40]


@pytest.mark.parametrize("sender, reason", [
    ("MAILER-DAEMON@mx.example.org".lower(), "sender: mailer-daemon"),
    ("mail.daemon@mx.example.org", "sender: mailer-daemon"),
    ("postmaster@example.org", "sender: postmaster"),
    ("no-reply@shop.example", "sender: no-reply"),
    ("noreply@shop.example", "sender: no-reply"),
    ("do_not_reply@shop.example", "sender: no-reply"),
    ("ne-pas-repondre@banque.fr", "sender: no-reply"),
    ("ne-pas-répondre@banque.fr", "sender: no-reply"),
    ("alerts-noreply@shop.example", "sender: no-reply"),
])
def test_addresses_nobody_reads_are_robots(sender, reason):
    assert auto_reason({}, sender, "Bonjour", None) == reason


@pytest.mark.parametrize("sender", ["noreen@example.fr", "replyall@example.fr", "postmasters.fan@example.fr"])
def test_addresses_that_merely_look_alike_are_people(sender):
    assert auto_reason({}, sender, "Bonjour", None) is None


@pytest.mark.parametrize("subject", ["Automatic reply: Commande", "Réponse automatique : Commande",
                                     "AutoReply: x", "Automatische Antwort: x", "Respuesta automática: x"])
def test_client_generated_auto_reply_subjects_are_robots(subject):
    assert auto_reason({}, PERSON, subject, None) == "subject: automatic reply"


def test_an_out_of_office_subject_counts_only_with_outlooks_suppress_header():
    assert auto_reason({}, PERSON, "Absence du bureau", None) is None
    assert auto_reason({}, PERSON, "Réponse automatique", None) is None  # no colon: a person may write it
    assert auto_reason(h(x_auto_response_suppress="All"), PERSON, "Bonjour", None) is None
    assert (auto_reason(h(x_auto_response_suppress="All"), PERSON, "Out of office until Monday", None)
            == "subject: out of office")


@pytest.mark.parametrize("value, kind", [("abuse", "abuse"), (" Not-Spam ", "not-spam"), ("fraud; x", "fraud"),
                                         ("", "other"), (None, "other"), ("???", "other")])
def test_feedback_type_reads_rfc_5965_or_says_other(value, kind):
    assert feedback_type(value) == kind


def test_a_hotmail_complaint_needs_its_subject_and_the_attached_original():
    assert hotmail_complaint("complaint about message from 203.0.113.5", True) == "abuse"
    assert hotmail_complaint("complaint about message from 203.0.113.5", False) is None
    assert hotmail_complaint("A complaint about message from my seller", True) is None


@pytest.mark.parametrize("part, feedback, ctype, kind", [
    ("delivery-report", None, "multipart/report; report-type=feedback-report", "delivery-report"),
    (None, "abuse", "multipart/mixed", "feedback-report"),
    (None, None, "multipart/report; report-type=delivery-status", "delivery-report"),
    (None, None, " Multipart/Report; report-type=disposition-notification", "disposition-notification"),
    (None, None, "multipart/report; report-type=x-unknown", "report"),
    (None, None, "multipart/mixed; report-type=delivery-status", None),
    (None, None, None, None),
])
def test_report_kind(part, feedback, ctype, kind):
    assert report_kind(part, feedback, ctype) == kind


def _cfg(**kw):
    base = dict(support_address="support@imolocale.fr", staff={"agent@imolocale.fr"},
                staff_domain=lambda addr: addr.endswith("@imolocale.fr"))
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("sender, auto, role, reason", [
    ("support@imolocale.fr", None, robots.ROBOT, "sent from our own address"),
    ("agent@imolocale.fr", "subject: automatic reply", robots.ROBOT, "subject: automatic reply"),
    ("agent@imolocale.fr", None, robots.STAFF, ""),
    ("shop@seller.fr", None, robots.SELLER, ""),
    ("colleague@imolocale.fr", None, robots.UNLISTED, ""),
    ("marie@example.fr", None, robots.CUSTOMER, ""),
])
def test_classify_puts_robots_first(sender, auto, role, reason):
    mail = SimpleNamespace(from_addr=sender, auto_reason=auto)
    assert robots.classify(mail, _cfg(), frozenset({"shop@seller.fr"})) == robots.Sender(role, reason)
