"""Staff work from their normal mail client: relays, notes, commands, forgery."""
from __future__ import annotations

import pytest

from maildesk.core import refs
from tests.integration.conftest import body
from tests.integration.test_intake import ref_of
from tests.support import mail

CS = "cs@imolocale.test"
GOOD_AR = ("mx.google.com; dkim=pass header.i=@imolocale.test header.s=g; "
           "spf=pass smtp.mailfrom=cs@imolocale.test; dmarc=pass (p=REJECT) header.from=imolocale.test")


@pytest.fixture
def opened(desk):
    """A complaint from Camille, acknowledged, with its staff notification."""
    desk.deliver(mail(message_id="<c1@example.fr>", body="Bonjour, mon colis n'est jamais arrivé."))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    return ref_of(ack), note


def staff_reply(note, text, sender=CS, name="Julie (service client)", headers=None):
    return mail(sender=sender, name=name, subject=f"Re: {note['Subject']}", body=text,
                in_reply_to=note["Message-ID"], references=note["Message-ID"], headers=headers)


def complaint(desk, ref):
    return desk.rows("SELECT * FROM complaints WHERE ref = ?", ref)[0]


def test_relay_strips_french_gmail_history_keeps_signature_and_hides_staff(desk, opened):
    ref, note = opened
    text = ("Bonjour Camille,\n\nNous avons contacté le vendeur, il renvoie le colis aujourd'hui.\n\n"
            "Julie\nService client imolocale\n\n"
            "Le mar. 24 nov. 2026 à 10:00, imolocale <support@imolocale.test> a écrit :\n"
            "> Nouvelle réclamation de Camille Martin :\n> Bonjour, mon colis n'est jamais arrivé.\n")
    desk.deliver(staff_reply(note, text))
    desk.once()
    [out] = desk.sent(to="camille@example.fr")
    raw = bytes(out)
    assert out["Subject"] == f"[{ref}] Colis jamais reçu"
    assert "il renvoie le colis" in body(out) and "Julie\nService client imolocale" in body(out)
    assert "Nouvelle réclamation" not in body(out) and "a écrit" not in body(out)
    assert b"cs@imolocale.test" not in raw and out["From"].addresses[0].addr_spec == "support@imolocale.test"
    assert out["In-Reply-To"] == "<c1@example.fr>" and out["Auto-Submitted"] is None
    row = complaint(desk, ref)
    assert row["first_staff_answer_at"] and row["last_customer_update_at"] >= row["first_staff_answer_at"]


@pytest.mark.parametrize("history", [
    "-----Original Message-----\nFrom: imolocale <support@imolocale.test>\nSent: Tuesday, November 24, 2026 10:00 AM\n"
    "To: cs@imolocale.test\nSubject: [REF] New complaint\n\nNew complaint from Camille Martin",
    "From: imolocale <support@imolocale.test>\nSent: Tuesday, November 24, 2026 10:00\nTo: cs@imolocale.test\n"
    "Subject: [REF] New complaint\n\nNew complaint from Camille Martin",
    "On Tue, Nov 24, 2026 at 10:00 AM imolocale <support@imolocale.test> wrote:\n> New complaint from Camille Martin",
    "De : imolocale <support@imolocale.test>\nEnvoyé : mardi 24 novembre 2026 10:00\nÀ : cs@imolocale.test\n"
    "Objet : [REF] Nouvelle réclamation\n\nNouvelle réclamation de Camille Martin",
])
def test_relay_strips_outlook_and_english_styles(desk, opened, history):
    ref, note = opened
    desk.deliver(staff_reply(note, f"Hello, the refund was sent this morning.\n\nJohn\n\n{history}\n"))
    desk.once()
    [out] = desk.sent(to="camille@example.fr")
    assert "refund was sent" in body(out) and "Camille Martin" not in body(out)


def test_note_never_reaches_the_customer(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#note\nLe client a appelé, il est très mécontent."))
    desk.once()
    assert desk.sent(to="camille@example.fr") == []
    events = desk.rows("SELECT kind, detail FROM events WHERE kind = 'note'")
    assert len(events) == 1 and "très mécontent" in events[0]["detail"]
    assert desk.rows("SELECT kind FROM messages WHERE kind = 'note'")


def test_resolve_sends_the_text_and_the_satisfaction_question(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#resolve\nLe remboursement de 45 € a été effectué."))
    desk.once()
    [out] = desk.sent(to="camille@example.fr")
    assert "45 €" in body(out) and "note de 1" in body(out)
    assert complaint(desk, ref)["status"] == "resolved"


def test_ask_waits_for_the_customer_and_their_answer_reopens(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#ask\nPouvez-vous nous envoyer une photo de l'étiquette ?"))
    desk.once()
    [out] = desk.sent(to="camille@example.fr")
    assert "photo de l'étiquette" in body(out) and "attend votre réponse" in body(out)
    assert complaint(desk, ref)["status"] == "waiting_customer"
    desk.deliver(mail(subject=f"Re: [{ref}] Colis jamais reçu", body="Voici la photo."))
    desk.once()
    assert complaint(desk, ref)["status"] == "open"


def test_escalate_and_level(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#escalate"))
    desk.once()
    assert complaint(desk, ref)["level"] == 2
    assert desk.sent(to="resolution@imolocale.test") and "équipe de résolution" in body(desk.sent(to="camille@example.fr")[0])
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#level 3"))
    desk.once()
    assert complaint(desk, ref)["level"] == 3 and desk.sent(to="cx@imolocale.test")


def test_assign_makes_one_person_the_owner_of_notifications(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#assign julie@imolocale.test"))
    desk.once()
    assert complaint(desk, ref)["owner"] == "julie@imolocale.test"
    desk.sink.clear()
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body="Des nouvelles ?"))
    desk.once()
    assert desk.sent(to="julie@imolocale.test") and desk.sent(to=CS) == []


def test_reopen_after_resolution(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#resolve\nC'est réglé."))
    desk.once()
    desk.deliver(staff_reply(note, "#reopen"))
    desk.once()
    assert complaint(desk, ref)["status"] == "open"


def test_bad_command_changes_nothing_and_explains(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#resolv\nC'est réglé."))
    desk.once()
    assert desk.sent(to="camille@example.fr") == []
    [err] = desk.sent(to=CS)
    assert "#resolv is not a command" in body(err) and "#resolve" in body(err) and "#assign" in body(err)
    row = complaint(desk, ref)
    assert row["status"] == "open" and row["level"] == 1


def test_forged_staff_message_is_kept_obeyed_in_nothing_and_admins_told(desk, opened):
    ref, note = opened
    desk.write_config(security={"require_authenticated_staff": True})
    forged_ar = "mx.google.com; dkim=none; spf=softfail smtp.mailfrom=cs@imolocale.test; dmarc=fail header.from=imolocale.test"
    desk.deliver(staff_reply(note, "#resolve\nRéglé.", headers={"Authentication-Results": forged_ar}))
    desk.deliver(staff_reply(note, "Voici les coordonnées bancaires d'un autre client..."))  # no header at all
    desk.once()
    assert desk.sent(to="camille@example.fr") == []
    alerts = desk.sent(to="admin@imolocale.test")
    assert len(alerts) == 1 and "cs@imolocale.test" in alerts[0]["Subject"]
    # the second forgery of the hour waits for the hour's coalesced alert (issue 12, finding 11)
    assert desk.rows("SELECT count(*) n FROM notices WHERE kind = 'admin_suspicious' AND mailed_at IS NULL")[0]["n"] == 1
    assert complaint(desk, ref)["status"] == "open"
    assert len(desk.rows("SELECT * FROM messages WHERE kind = 'suspicious'")) == 2


def test_authenticated_staff_is_obeyed_when_authentication_is_required(desk, opened):
    ref, note = opened
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note, "#resolve\nRéglé.", headers={"Authentication-Results": GOOD_AR}))
    desk.once()
    assert complaint(desk, ref)["status"] == "resolved"


def test_staff_reply_to_a_complaint_that_does_not_exist(desk):
    ghost = refs.new_reference("IMO")
    desk.deliver(mail(sender=CS, subject=f"Re: [{ghost}] Colis", body="#resolve\nRéglé."))
    desk.once()
    [err] = desk.sent(to=CS)
    assert ghost in body(err)
    assert desk.rows("SELECT * FROM complaints") == []


def test_shared_mailbox_reply_found_in_the_sent_folder(desk, opened):
    ref, note = opened
    desk.write_config(mailbox={"sent_folder": "auto"})
    desk.once()  # first look at Sent: history is not replayed
    ack_id = desk.rows("SELECT message_id FROM outbox WHERE kind = 'ack'")[0]["message_id"]
    # Gmail files what maildesk sent through it in Sent too: that is not a staff reply
    desk.deliver(mail(sender="support@imolocale.test", to="camille@example.fr", subject=f"[{ref}] Colis jamais reçu",
                      message_id=ack_id, body="Nous avons bien reçu votre réclamation."), folder="Sent")
    desk.deliver(mail(sender="support@imolocale.test", name="imolocale", to="Camille <camille@example.fr>",
                      subject=f"Re: [{ref}] Colis jamais reçu", message_id="<from-gmail-web@imolocale.test>",
                      body="Bonjour, votre colis est reparti ce matin. Julie"), folder="Sent")
    desk.once()
    rows = desk.rows("SELECT message_id, kind, direction FROM messages WHERE kind = 'customer:staff_sent'")
    assert [(r["message_id"], r["direction"]) for r in rows] == [("<from-gmail-web@imolocale.test>", "out")]
    row = complaint(desk, ref)
    assert row["first_staff_answer_at"] is not None
    assert desk.sent(to="camille@example.fr") == []  # recorded, not re-sent
    desk.once()
    assert len(desk.rows("SELECT * FROM messages WHERE kind = 'customer:staff_sent'")) == 1
