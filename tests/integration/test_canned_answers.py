"""Canned answers by mail (issue 18 item 1): `#template NAME` relays a rendered canned file with the
staff text after it; no name or an unknown one gets the staff member the list and the customer
nothing; a file added while the daemon runs is used without a restart."""
from __future__ import annotations

import pytest

from maildesk.daemon import Daemon
from tests.integration.conftest import body
from tests.integration.test_intake import ref_of
from tests.integration.test_staff import CS, GOOD_AR, staff_reply
from tests.support import mail

CAMILLE = "camille@example.fr"


def open_one(desk, body_text="Bonjour, ma commande n° 784512 est arrivée cassée.", sender=CAMILLE):
    desk.deliver(mail(sender=sender, message_id="<c1@example.fr>", body=body_text))
    desk.once()
    [ack] = desk.sent(to=sender)
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    return ref_of(ack), note


def complaint(desk, ref):
    return dict(desk.rows("SELECT * FROM complaints WHERE ref = ?", ref)[0])


def test_template_relays_the_canned_answer_with_the_complaint_context_then_the_staff_text(desk):
    ref, note = open_one(desk)
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note, "#template photos\nJulie, service client",
                             headers={"Authentication-Results": GOOD_AR}))
    desk.once()
    [out] = desk.sent(to=CAMILLE)
    text = body(out)
    assert out["Subject"] == f"[{ref}] Colis jamais reçu" and out["In-Reply-To"] == "<c1@example.fr>"
    assert text.startswith("Bonjour Camille Martin,") and "réclamation " + ref in text
    assert "(commande 784512)" in text and "{{" not in text and "Demande de photos" not in text  # description
    assert text.index("le colis tel que vous l'avez reçu") < text.index("Julie, service client")
    assert desk.sent(to=CS) == []  # no list, no error
    row = complaint(desk, ref)
    assert row["first_staff_answer_at"] and row["last_customer_update_at"] == row["first_staff_answer_at"]
    [event] = desk.rows("SELECT detail FROM events WHERE kind = 'canned_answer'")
    assert '"photos"' in event["detail"]


def test_an_english_customer_gets_the_english_canned_answer(desk):
    ref, note = open_one(desk, "Hello, my order never arrived and the seller does not answer. Can you help me please?")
    assert complaint(desk, ref)["lang"] == "en"
    desk.deliver(staff_reply(note, "#template colis-enquete"))
    desk.once()
    [out] = desk.sent(to=CAMILLE)
    assert "We have opened an investigation with the carrier" in body(out)


def test_a_forged_template_command_is_obeyed_in_nothing(desk):
    ref, note = open_one(desk)
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note, "#template photos"))  # no Authentication-Results: not provably staff
    desk.once()
    assert desk.sent(to=CAMILLE) == [] and complaint(desk, ref)["first_staff_answer_at"] is None


@pytest.mark.parametrize("command, unknown", [("#template", None), ("#template photo", "photo"),
                                              ("#template ../fr/ack", "../fr/ack")])
def test_no_name_or_an_unknown_one_lists_the_canned_answers_to_staff_only(desk, command, unknown):
    ref, note = open_one(desk)
    desk.deliver(staff_reply(note, f"{command}\nMerci de nous envoyer des photos."))
    desk.once()
    assert desk.sent(to=CAMILLE) == []
    [answer] = desk.sent(to=CS)
    text = body(answer)
    for name in ("photos", "remboursement", "retour-accepte", "colis-enquete", "vendeur-contacte"):
        assert f"#template {name} — " in text
    assert "#template photos — Demande de photos" in text  # each with its first line
    if unknown:
        assert f"Il n'y a pas de réponse type « {unknown} »" in text and "votre texte non plus" in text
    assert complaint(desk, ref)["first_staff_answer_at"] is None


def test_a_canned_file_added_or_edited_while_running_is_used_without_restart(desk, tmp_path):
    ref, note = open_one(desk)
    desk.write_config(templates={"dir": str(tmp_path)})
    app = desk.app()
    try:
        Daemon(app).once()  # the app has started: templates checked, nothing to do
        desk.deliver(staff_reply(note, "#template geste-commercial"))
        Daemon(app).once()
        [listing] = desk.sent(to=CS)
        assert "geste-commercial" in body(listing) and desk.sent(to=CAMILLE) == []
        desk.sink.clear()

        (tmp_path / "canned" / "fr").mkdir(parents=True)
        path = tmp_path / "canned" / "fr" / "geste-commercial.txt"
        path.write_text("Geste commercial\nUn bon de 10 € vous est offert pour {{ ref }}.\n", encoding="utf-8")
        desk.deliver(staff_reply(note, "#template geste-commercial"))
        Daemon(app).once()
        [out] = desk.sent(to=CAMILLE)
        assert f"Un bon de 10 € vous est offert pour {ref}." in body(out)

        path.write_text("Geste commercial\nUn bon de 20 € vous est offert.\n", encoding="utf-8")  # edited
        desk.deliver(staff_reply(note, "#template geste-commercial"))
        Daemon(app).once()
        assert "Un bon de 20 € vous est offert." in body(desk.sent(to=CAMILLE)[-1])
        # the operator's folder overrides a shipped canned answer file by file
        (tmp_path / "canned" / "fr" / "photos.txt").write_text("Photos, version maison\nEnvoyez-nous vos photos.\n",
                                                               encoding="utf-8")
        desk.deliver(staff_reply(note, "#template photos"))
        Daemon(app).once()
        assert body(desk.sent(to=CAMILLE)[-1]).startswith("Envoyez-nous vos photos.")
    finally:
        app.close()


def test_a_canned_file_broken_after_start_tells_the_staff_member_and_sends_nothing(desk, tmp_path):
    ref, note = open_one(desk)
    desk.write_config(templates={"dir": str(tmp_path)})
    app = desk.app()
    try:
        Daemon(app).once()
        (tmp_path / "canned" / "fr").mkdir(parents=True)
        (tmp_path / "canned" / "fr" / "casse.txt").write_text("Cassé\nBonjour {{ complaint.nom }}\n", encoding="utf-8")
        desk.deliver(staff_reply(note, "#template casse"))
        Daemon(app).once()
    finally:
        app.close()
    assert desk.sent(to=CAMILLE) == []
    [answer] = desk.sent(to=CS)
    assert "ne peut pas être préparée" in body(answer) and "casse.txt" in body(answer) and "nom" in body(answer)
    assert complaint(desk, ref)["first_staff_answer_at"] is None
