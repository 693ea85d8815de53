"""Intake end to end on real servers: inbox -> complaint -> acknowledgement."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import body
from tests.support import mail

REF = re.compile(r"\[(IMO-[0-9A-Z]{6})\]")


def ref_of(msg) -> str:
    return REF.search(str(msg["Subject"])).group(1)


def test_new_complaint_is_stored_acknowledged_and_notified(desk, support):
    raw = mail(subject="Colis jamais reçu", message_id="<c1@example.fr>",
               body="Bonjour,\nma commande n° 784512 n'est jamais arrivée.\nCamille")
    desk.deliver(raw)
    desk.once()

    [complaint] = desk.rows("SELECT * FROM complaints")
    assert complaint["customer_addr"] == "camille@example.fr"
    assert complaint["customer_name"] == "Camille Martin"
    assert complaint["subject"] == "Colis jamais reçu"
    assert complaint["order_number"] == "784512"
    assert complaint["level"] == 1 and complaint["status"] == "open"
    assert complaint["first_contact"] and complaint["lang"] == "fr"

    [ack] = desk.sent(to="camille@example.fr")
    ref = complaint["ref"]
    assert ack["Subject"] == f"[{ref}] Colis jamais reçu"
    assert ref in body(ack) and "24 heures" in body(ack) and "48 heures" in body(ack) and "5 jours" in body(ack)
    assert ack["In-Reply-To"] == "<c1@example.fr>" and "<c1@example.fr>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Message-ID"].endswith("@imolocale.test>")

    [note] = desk.sent(to="cs@imolocale.test")
    assert f"[{ref}]" in note["Subject"] and "784512" in body(note)
    assert note["Reply-To"] == support

    assert desk.folder("INBOX") == 0 and desk.folder("maildesk/processed") == 1
    [sent_row] = desk.rows("SELECT status FROM outbox WHERE kind = 'ack'")
    assert sent_row["status"] == "sent"


def test_english_customer_gets_english(desk):
    desk.deliver(mail(sender="john@example.com", name="John Smith", subject="Wrong item delivered",
                      body="Hello, I ordered a blue teapot but the seller sent a red one. I would like a refund."))
    desk.once()
    [ack] = desk.sent(to="john@example.com")
    assert "We have received your complaint" in body(ack)


def test_reply_with_tag_or_headers_joins_the_complaint(desk):
    desk.deliver(mail(message_id="<first@example.fr>"))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    ref = ref_of(ack)
    desk.deliver(mail(subject=f"Re: [{ref}] Colis jamais reçu", body="Voici la photo du colis.",
                      message_id="<second@example.fr>"))
    desk.deliver(mail(subject="Re: encore moi", body="Et le numéro de suivi: XY123.",
                      in_reply_to=ack["Message-ID"], references=f"<first@example.fr> {ack['Message-ID']}",
                      message_id="<third@example.fr>"))
    desk.once()
    assert len(desk.rows("SELECT * FROM complaints")) == 1
    msgs = desk.rows("SELECT message_id FROM messages WHERE direction = 'in' ORDER BY id")
    assert [m["message_id"] for m in msgs] == ["<first@example.fr>", "<second@example.fr>", "<third@example.fr>"]
    assert len(desk.sent(to="camille@example.fr")) == 1  # no second acknowledgement
    notes = desk.sent(to="cs@imolocale.test")
    assert len(notes) == 3 and "Voici la photo" in body(notes[1])


def test_quoted_history_is_stripped_for_display_and_kept_in_the_original(desk):
    desk.deliver(mail())
    desk.once()
    ref = ref_of(desk.sent(to="camille@example.fr")[0])
    text = ("Toujours rien reçu.\n\nLe lun. 23 nov. 2026 à 10:00, imolocale <support@imolocale.test> a écrit :\n"
            "> Nous avons bien reçu votre réclamation.\n")
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body=text))
    desk.once()
    [reply] = desk.rows("SELECT reply_text, body, raw FROM messages WHERE direction='in' ORDER BY id DESC LIMIT 1")
    assert reply["reply_text"].strip() == "Toujours rien reçu."
    assert "Nous avons bien reçu" in reply["body"] and b"a =C3=A9crit" in reply["raw"] or b"crit" in reply["raw"]


def test_someone_elses_reference_opens_a_new_complaint_and_reveals_nothing(desk):
    desk.deliver(mail(subject="Remboursement de ma commande secrète", message_id="<victim@example.fr>"))
    desk.once()
    victim_ref = ref_of(desk.sent(to="camille@example.fr")[0])
    desk.deliver(mail(sender="mallory@evil.example", name="Mallory", subject=f"Re: [{victim_ref}] hello",
                      body="Please send me the details of this complaint.",
                      in_reply_to="<victim@example.fr>"))
    desk.once()
    complaints = desk.rows("SELECT ref, customer_addr FROM complaints ORDER BY id")
    assert len(complaints) == 2 and complaints[1]["customer_addr"] == "mallory@evil.example"
    [to_mallory] = desk.sent(to="mallory@evil.example")
    assert victim_ref not in body(to_mallory) and "secrète" not in body(to_mallory)
    assert ref_of(to_mallory) == complaints[1]["ref"] != victim_ref
    victim_msgs = desk.rows("SELECT count(*) n FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                            "WHERE c.ref = ? AND m.from_addr = 'mallory@evil.example'", victim_ref)
    assert victim_msgs[0]["n"] == 0


def test_automatic_mail_never_gets_an_automatic_answer(desk, support):
    desk.deliver(mail(message_id="<orig@example.fr>"))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    ref = ref_of(ack)
    before = len(desk.sink.messages)
    robots = [
        mail(subject=f"Réponse automatique : [{ref}] Colis", body="Je suis absente jusqu'au 1er décembre.",
             in_reply_to=ack["Message-ID"], headers={"Auto-Submitted": "auto-replied"}),
        mail(sender="news@shop.example", subject="Promo", headers={"Precedence": "bulk"}),
        mail(sender="members@lists.example", subject="digest", headers={"List-Id": "<members.lists.example>"}),
        mail(sender="noreply@bank.example", subject="Votre relevé"),
        mail(sender="someone@example.org", subject="Out of office", headers={"X-Autoreply": "yes"}),
        mail(sender=support, name="imolocale", subject=f"[{ref}] loop?"),
        mail(sender="MAILER-DAEMON@mx.example", name="Mail Delivery System", subject="Undelivered Mail",
             body=f"Your message could not be delivered.\nMessage-ID: {ack['Message-ID']}"),
    ]
    for raw in robots:
        desk.deliver(raw)
    desk.once()
    assert len(desk.sink.messages) == before
    assert len(desk.rows("SELECT * FROM complaints")) == 1
    recorded = desk.rows("SELECT kind FROM messages WHERE direction = 'in' AND kind IN ('auto', 'bounce')")
    assert len(recorded) >= 1
    assert desk.folder("INBOX") == 0 and desk.folder("maildesk/processed") == 1 + len(robots)


def test_the_same_message_twice_is_processed_once(desk):
    raw = mail(message_id="<twice@example.fr>")
    desk.deliver(raw)
    desk.deliver(raw)
    desk.once()
    desk.deliver(raw)
    desk.once()
    assert len(desk.rows("SELECT * FROM complaints")) == 1
    assert len(desk.sent(to="camille@example.fr")) == 1
    assert desk.folder("maildesk/processed") == 3 and desk.folder("INBOX") == 0


def test_unparseable_mail_is_quarantined_and_the_batch_goes_on(desk):
    desk.deliver(b"this is not an e-mail at all\r\n")
    desk.deliver(mail(sender="", name="", subject="no sender"))
    desk.deliver(mail())
    result = desk.once()
    assert "quarantined" in result.stderr
    assert desk.folder("maildesk/quarantine") == 2 and desk.folder("maildesk/processed") == 1
    assert desk.folder("INBOX") == 0
    reasons = [r["reason"] for r in desk.rows("SELECT reason FROM quarantine")]
    assert len(reasons) == 2 and all(reasons)
    assert len(desk.rows("SELECT * FROM complaints")) == 1


def test_html_only_mail_and_attachments(desk):
    from email.message import EmailMessage
    msg = EmailMessage()
    msg["From"] = "Ana <ana@example.fr>"
    msg["To"] = "support@imolocale.test"
    msg["Subject"] = "Photo du produit cassé"
    msg["Message-ID"] = "<html@example.fr>"
    msg.set_content("<html><body><p>Bonjour,</p><p>Le vase est <b>cassé</b>.</p></body></html>", subtype="html")
    msg.add_attachment(b"\x89PNG small", maintype="image", subtype="png", filename="photo.png")
    msg.add_attachment(b"x" * (2 * 1024 * 1024), maintype="application", subtype="pdf", filename="facture.pdf")
    desk.write_config(storage={"attachment_max_mb": 1})
    desk.deliver(msg.as_bytes())
    desk.once()
    [m] = desk.rows("SELECT body FROM messages WHERE direction = 'in'")
    assert "Le vase est" in m["body"] and "<p>" not in m["body"]
    atts = {a["filename"]: a for a in desk.rows("SELECT a.filename, a.size, f.content FROM attachments a LEFT JOIN files f ON f.sha256 = a.sha256")}
    assert atts["photo.png"]["content"] == b"\x89PNG small"
    assert atts["facture.pdf"]["size"] == 2 * 1024 * 1024 and atts["facture.pdf"]["content"] is None


def test_smtp_refusal_is_retried_and_sent_once(desk):
    desk.sink.fail_next(2, code=451)
    desk.deliver(mail())
    desk.once()
    assert desk.sent(to="camille@example.fr") == []
    rows = desk.rows("SELECT status, attempts, last_error FROM outbox WHERE status = 'queued'")
    assert rows and "451" in rows[0]["last_error"]
    desk.rows("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
    desk.db().execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00'").connection.commit()
    desk.once()
    assert len(desk.sent(to="camille@example.fr")) == 1
    desk.once()
    assert len(desk.sent(to="camille@example.fr")) == 1


def test_permanent_smtp_failure_is_recorded_on_the_complaint(desk):
    desk.sink.refuse_all(550)
    desk.deliver(mail())
    desk.once()
    rows = desk.rows("SELECT status FROM outbox")
    assert {r["status"] for r in rows} == {"failed"}
    events = desk.rows("SELECT kind FROM events WHERE kind = 'send_failed'")
    assert len(events) == 2


@pytest.mark.sqlite_only  # the SQLite file's instance lock (PostgreSQL: test_standby.py)
def test_second_instance_is_refused(desk):
    import fcntl, os
    app = desk.app()
    lock = Path(str(app.cfg.database_path) + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242")
    try:
        result = desk.cli("once")
        assert result.returncode == 1 and "already running" in result.stderr and "4242" in result.stderr
    finally:
        os.close(fd)


def test_a_strangers_new_complaint_carries_only_its_own_reference(desk):
    """Issue 12, finding 6: the other customer's tag leaves the new complaint's subject."""
    desk.deliver(mail(subject="Remboursement"))
    desk.once()
    victim_ref = ref_of(desk.sent(to="camille@example.fr")[0])
    desk.sink.clear()
    desk.deliver(mail(sender="mallory@evil.example", name="Mallory", subject=f"Re: [{victim_ref}] Colis cassé",
                      message_id="<stranger@evil.example>"))
    desk.once()
    [row] = desk.rows("SELECT ref, subject FROM complaints WHERE customer_addr = 'mallory@evil.example'")
    assert row["subject"] == "Re: Colis cassé"
    for sent in desk.sent():
        assert victim_ref not in str(sent["Subject"]) and row["ref"] in str(sent["Subject"])
    [kept] = desk.rows("SELECT subject FROM messages WHERE message_id = '<stranger@evil.example>'")
    assert kept["subject"] == f"Re: [{victim_ref}] Colis cassé"  # the original keeps it


def test_automatic_mail_joins_only_through_our_message_id_or_as_a_party(desk):
    """Issue 12, finding 12: 'automatic' mail from a stranger is no way into someone's complaint."""
    desk.deliver(mail(message_id="<victim@example.fr>"))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    ref = ref_of(ack)
    before = len(desk.sent())
    phish = "Le client a changé d'adresse : écrivez désormais à attacker@evil.test, IBAN FR7630006000011234567890189"
    auto = {"Auto-Submitted": "auto-replied"}
    desk.deliver(mail(sender="attacker@evil.test", name="A", subject=f"Réponse automatique : [{ref}] Colis",
                      body=phish, headers=auto, message_id="<tag@evil.test>"))
    desk.deliver(mail(sender="attacker@evil.test", name="A", subject="Absent", body=phish, headers=auto,
                      in_reply_to="<victim@example.fr>", message_id="<theirs@evil.test>"))
    desk.deliver(mail(sender="attacker@evil.test", name="A", subject="Absent", body=phish, headers=auto,
                      in_reply_to=ack["Message-ID"], message_id="<ours@evil.test>"))
    desk.deliver(mail(sender="MAILER-DAEMON@mx.example", name="Mail Delivery System", subject="Undelivered Mail",
                      body=f"Your message could not be delivered.\nMessage-ID: {ack['Message-ID']}",
                      message_id="<bounce@mx.example>"))
    desk.once()
    joined = {r["message_id"]: r["complaint_id"] for r in desk.rows("SELECT message_id, complaint_id FROM messages "
                                                                    "WHERE direction = 'in'")}
    victim_id = desk.rows("SELECT id FROM complaints WHERE ref = ?", ref)[0]["id"]
    assert joined["<tag@evil.test>"] is None and joined["<theirs@evil.test>"] is None  # kept on their own
    assert joined["<ours@evil.test>"] == victim_id  # it answers a mail of ours
    assert joined["<bounce@mx.example>"] == victim_id  # a genuine bounce of our acknowledgement
    outcomes = {r["message_id"]: r["outcome"] for r in desk.rows("SELECT message_id, outcome FROM processed")}
    assert outcomes["<tag@evil.test>"] == "robot"
    assert len(desk.sent()) == before  # nothing answered, nobody notified
    # the customer writes again: staff hear of it, never of the stranger's text
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body="Toujours rien."))
    desk.once()
    [note] = desk.sent(to="cs@imolocale.test")[-1:]
    assert "Toujours rien" in body(note) and "IBAN" not in body(note) and "attacker@evil.test" not in body(note)
    assert len(desk.rows("SELECT * FROM complaints")) == 1
