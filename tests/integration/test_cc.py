"""The customer's Cc end to end on real Dovecot and SMTP (issue 16 item 6): kept on the complaint,
copied (header and envelope) on customer-facing mail, a party who writes in is heard but cannot
rate, a staff reply's own Cc is copied on that relay, and a seller never sees any of it."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from email import message_from_bytes, policy as email_policy
from email.utils import getaddresses

from tests.integration.test_clock import once_at
from tests.integration.test_sellers import CS, CUSTOMER, H, LUMIERE, SELLERS_CSV, T0, cli_at, events, to
from tests.integration.test_intake import ref_of
from tests.support import SUPPORT, mail

PARTNER = "paul.martin@example.fr"
COLLEAGUE = "lea@example.fr"  # the customer's colleague, whom staff copy on one answer


def captured_since(desk, before: int) -> list[tuple[object, list[str]]]:
    """(parsed mail, envelope recipients) of what the sink got since `before`."""
    return [(message_from_bytes(c.data, policy=email_policy.default), [r.lower() for r in c.rcpt_tos])
            for c in desk.sink.messages[before:]]


def cc_of(msg) -> list[str]:
    return [a.lower() for _, a in getaddresses(msg.get_all("Cc", []))]


def at(desk, when: datetime) -> list[tuple[object, list[str]]]:
    before = len(desk.sink.messages)
    once_at(desk, when)
    return captured_since(desk, before)


def open_with_cc(desk, cc: str, when=T0, **kw):
    desk.deliver(mail(body="Bonjour, ma commande 784512 n'est jamais arrivée.", message_id="<c1@example.fr>",
                      headers={"Cc": cc}, **kw), msg_time=when)
    got = at(desk, when + timedelta(minutes=1))
    [(ack, ack_rcpt)] = [(m, r) for m, r in got if CUSTOMER in str(m["To"])]
    [note] = [m for m, _ in got if CS in str(m["To"])]
    return ref_of(ack), ack, ack_rcpt, note


def staff_says(desk, note, text: str, when: datetime, headers=None):
    desk.deliver(mail(sender=CS, name="Julie", subject=f"Re: {note['Subject']}", body=text,
                      in_reply_to=note["Message-ID"], references=note["Message-ID"], headers=headers),
                 msg_time=when)
    return at(desk, when + timedelta(minutes=1))


def complaint(desk, ref):
    return desk.rows("SELECT * FROM complaints WHERE ref = ?", ref)[0]


def test_the_customers_cc_gets_the_ack_and_the_resolution_in_header_and_envelope(desk):
    ref, ack, rcpt, note = open_with_cc(desk, f"Paul <{PARTNER}>")
    assert cc_of(ack) == [PARTNER] and sorted(rcpt) == sorted([CUSTOMER, PARTNER])
    assert [a.addr_spec for a in ack["To"].addresses] == [CUSTOMER]
    assert json.loads(complaint(desk, ref)["cc_addrs"]) == [PARTNER]
    assert f"{PARTNER}" in note.get_body(preferencelist=("plain",)).get_content()  # staff see who is in Cc
    # the outbox counts both recipients against the daily limit; the messages row records the Cc
    [row] = desk.rows("SELECT json_array_length(rcpt) AS n FROM outbox WHERE kind = 'ack'")
    assert row["n"] == 2
    [msg] = desk.rows("SELECT cc_addrs FROM messages WHERE kind = 'customer:ack'")
    assert json.loads(msg["cc_addrs"]) == [PARTNER]
    got = staff_says(desk, note, "#resolve\nLe vendeur a remboursé la commande.", T0 + H)
    [(res, res_rcpt)] = [(m, r) for m, r in got if CUSTOMER in str(m["To"])]
    assert "rembours" in res.get_body(preferencelist=("plain",)).get_content()
    assert cc_of(res) == [PARTNER] and sorted(res_rcpt) == sorted([CUSTOMER, PARTNER])
    code, out = cli_at(desk, T0 + 2 * H, "show", ref)
    assert code == 0 and f"in Cc    : {PARTNER}" in out


def test_keep_customer_cc_false_copies_nobody(desk):
    desk.write_config(policy={"keep_customer_cc": False})
    ref, ack, rcpt, _ = open_with_cc(desk, PARTNER)
    assert ack["Cc"] is None and rcpt == [CUSTOMER]
    assert json.loads(complaint(desk, ref)["cc_addrs"]) == [PARTNER]  # kept for staff to see, not copied


def test_our_own_staff_and_seller_addresses_in_the_cc_are_dropped(desk):
    path = desk.dir / "sellers.csv"
    path.write_text(SELLERS_CSV, encoding="utf-8")
    assert cli_at(desk, T0 - 24 * H, "seller", "import", str(path), "--by", "ops")[0] == 0
    cc = f"{SUPPORT}, support+ventes@imolocale.test, {CS}, {LUMIERE}, {PARTNER}"
    ref, ack, rcpt, _ = open_with_cc(desk, cc)
    assert cc_of(ack) == [PARTNER] and sorted(rcpt) == sorted([CUSTOMER, PARTNER])
    [refused] = desk.rows("SELECT detail FROM events WHERE kind = 'cc_refused'")
    detail = json.loads(refused["detail"])["refused"]
    assert f"{CS}: staff" in detail and f"{LUMIERE}: a seller" in detail
    assert not any(SUPPORT in d for d in detail)  # our own address in To/Cc is normal, not news


def test_a_party_replies_with_the_tag_joins_staff_are_told_and_her_5_of_5_is_no_rating(desk):
    ref, ack, _, note = open_with_cc(desk, PARTNER)
    desk.deliver(mail(sender=PARTNER, name="Paul", subject=f"Re: {ack['Subject']}",
                      body="Bonjour, j'ajoute que le colis devait arriver lundi."), msg_time=T0 + H)
    got = at(desk, T0 + H + timedelta(minutes=1))
    [told] = [m for m, _ in got if CS in str(m["To"])]
    text = told.get_body(preferencelist=("plain",)).get_content()
    assert PARTNER in text and "devait arriver lundi" in text
    assert not [m for m, _ in got if CUSTOMER in str(m["To"]) or PARTNER in str(m["To"])]  # no ack to her
    assert desk.rows("SELECT count(*) AS n FROM complaints")[0]["n"] == 1
    staff_says(desk, note, "#resolve\nRemboursé.", T0 + 2 * H)
    desk.deliver(mail(sender=PARTNER, name="Paul", subject=f"Re: [{ref}] Colis", body="5/5"), msg_time=T0 + 3 * H)
    got = at(desk, T0 + 3 * H + timedelta(minutes=1))
    row = complaint(desk, ref)
    assert row["rating"] is None and row["status"] == "resolved"
    assert "rated" not in events(desk, ref) and events(desk, ref).count("party_wrote") == 2
    assert [m for m, _ in got if CS in str(m["To"])]  # news for staff
    desk.deliver(mail(body="5/5", subject=f"Re: [{ref}] Colis"), msg_time=T0 + 4 * H)  # the customer's counts
    at(desk, T0 + 4 * H + timedelta(minutes=1))
    assert complaint(desk, ref)["rating"] == 5


def test_a_partys_request_for_the_sellers_details_is_not_answered_and_her_new_mail_opens_her_own(desk):
    ref, ack, _, _ = open_with_cc(desk, PARTNER)
    desk.deliver(mail(sender=PARTNER, name="Paul", subject=f"Re: [{ref}] Colis",
                      body="Donnez-moi les coordonnées du vendeur."), msg_time=T0 + H)
    at(desk, T0 + H + timedelta(minutes=1))
    assert "party_wrote" in events(desk, ref) and "seller_contact_requested" not in events(desk, ref)
    desk.deliver(mail(sender=PARTNER, name="Paul", subject="Autre commande cassée", body="Ma lampe est cassée."),
                 msg_time=T0 + 2 * H)
    got = at(desk, T0 + 2 * H + timedelta(minutes=1))
    [(own_ack, _)] = [(m, r) for m, r in got if PARTNER in str(m["To"])]
    assert ref_of(own_ack) != ref


def test_an_out_of_office_from_the_cc_is_never_answered(desk):
    ref, ack, _, _ = open_with_cc(desk, PARTNER)
    desk.deliver(mail(sender=PARTNER, subject=f"Réponse automatique : {ack['Subject']}", body="Absent.",
                      headers={"Auto-Submitted": "auto-replied"}), msg_time=T0 + H)
    assert at(desk, T0 + H + timedelta(minutes=1)) == []
    assert "auto" in events(desk, ref)


def dsn(message_id: str, failed: str) -> bytes:
    """A delivery report as Postfix writes it: the failed address only in its message/delivery-status part."""
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.fr>\nTo: {SUPPORT}\n"
            "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <b1@mx.example.fr>\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
            "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.fr\n\n"
            f"Final-Recipient: rfc822; {failed}\nAction: failed\nStatus: 5.1.1\n\n"
            f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {message_id}\nFrom: {SUPPORT}\n\n"
            "--B--\n").encode()


def test_a_bounce_for_the_cc_drops_that_address_not_the_customer(desk):
    ref, ack, _, note = open_with_cc(desk, PARTNER)
    desk.deliver(dsn(ack["Message-ID"], PARTNER), msg_time=T0 + H)
    at(desk, T0 + H + timedelta(minutes=1))
    assert json.loads(complaint(desk, ref)["cc_addrs"]) == []
    assert "cc_dropped" in events(desk, ref)
    got = staff_says(desk, note, "Nous avons relancé le vendeur.", T0 + 2 * H)
    [(relay, rcpt)] = [(m, r) for m, r in got if CUSTOMER in str(m["To"])]
    assert relay["Cc"] is None and rcpt == [CUSTOMER]


def test_staff_cc_on_a_reply_is_copied_on_that_relay_only_and_notes_copy_nobody(desk):
    ref, _, _, note = open_with_cc(desk, PARTNER)
    got = staff_says(desk, note, "Bonjour, nous revenons vers vous demain.", T0 + H,
                     headers={"Cc": f"{COLLEAGUE}, resolution@imolocale.test, {CUSTOMER}"})
    [(relay, rcpt)] = [(m, r) for m, r in got if CUSTOMER in str(m["To"])]
    assert sorted(cc_of(relay)) == sorted([PARTNER, COLLEAGUE])
    assert sorted(rcpt) == sorted([CUSTOMER, PARTNER, COLLEAGUE])
    assert json.loads(complaint(desk, ref)["cc_addrs"]) == [PARTNER]  # that mail only
    got = staff_says(desk, note, "#note\nAppel du client.", T0 + 2 * H, headers={"Cc": COLLEAGUE})
    assert not [m for m, r in got if COLLEAGUE in r or CUSTOMER in r]


def test_seller_outreach_carries_no_cc_and_no_cc_address_anywhere(desk):
    path = desk.dir / "sellers.csv"
    path.write_text(SELLERS_CSV, encoding="utf-8")
    assert cli_at(desk, T0 - 24 * H, "seller", "import", str(path), "--by", "ops")[0] == 0
    ref, _, _, note = open_with_cc(desk, PARTNER)
    before = len(desk.sink.messages)
    staff_says(desk, note, f"#seller S-1042\nLa cliente n'a jamais reçu la commande 784512 (son mari : {PARTNER}).",
               T0 + H, headers={"Cc": COLLEAGUE})
    once_at(desk, T0 + 30 * H)  # the outreach reminder
    seller_mail = [c for c in desk.sink.messages[before:] if LUMIERE in c.rcpt_tos]
    assert len(seller_mail) >= 2
    for c in seller_mail:
        msg = message_from_bytes(c.data, policy=email_policy.default)
        assert msg["Cc"] is None and c.rcpt_tos == [LUMIERE]
        assert PARTNER.encode() not in c.data and COLLEAGUE.encode() not in c.data
        assert b"paul.martin" not in c.data.lower()


def test_a_cc_the_server_refuses_at_rcpt_is_dropped_and_the_customer_still_gets_the_mail(desk):
    desk.sink.unknown_users.add(PARTNER)
    ref, ack, rcpt, _ = open_with_cc(desk, PARTNER)
    assert rcpt == [CUSTOMER] and cc_of(ack) == [PARTNER]  # the header as written; the server refused her
    assert desk.rows("SELECT status FROM outbox WHERE kind = 'ack'")[0]["status"] == "sent"
    assert json.loads(complaint(desk, ref)["cc_addrs"]) == []
    kinds = events(desk, ref)
    assert "recipient_refused" in kinds and "cc_dropped" in kinds and "send_failed" not in kinds


def test_a_partys_status_question_is_answered_in_the_customers_thread(desk):
    ref, _, _, _ = open_with_cc(desk, PARTNER)
    desk.deliver(mail(sender=PARTNER, name="Paul", subject=f"Re: [{ref}] Colis", body="Où en est ma réclamation ?"),
                 msg_time=T0 + H)
    got = at(desk, T0 + H + timedelta(minutes=1))
    [(status, rcpt)] = got  # the status mail only: staff are not told, no clock moves
    assert [a.addr_spec for a in status["To"].addresses] == [CUSTOMER] and cc_of(status) == [PARTNER]
    assert sorted(rcpt) == sorted([CUSTOMER, PARTNER])


def test_a_merge_carries_the_customers_cc_to_the_survivor(desk):
    a, _, _, _ = open_with_cc(desk, f"Paul <{PARTNER}>")
    desk.deliver(mail(body="Je réécris : toujours rien.", subject="Lampe", message_id="<c2@example.fr>"),
                 msg_time=T0 + H)
    got = at(desk, T0 + H + timedelta(minutes=1))
    [b] = {ref_of(m) for m, _ in got if CUSTOMER in str(m["To"])}
    assert a != b and complaint(desk, b)["cc_addrs"] is None
    code, out = cli_at(desk, T0 + 2 * H, "merge", a, b, "--by", "julie")
    assert code == 0, out
    assert json.loads(complaint(desk, b)["cc_addrs"]) == [PARTNER]
    assert "cc_added" in events(desk, b)
