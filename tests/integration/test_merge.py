"""Merging two complaints (issue 18 item 3), by staff mail and on the command line, on real
Dovecot + SMTP: rows move with a trace, A's clock stops, A's customer is told once, late mail
naming A threads to B, and every refusal says why."""
from __future__ import annotations

import json
from email.message import EmailMessage

import pytest

from maildesk.core import refs
from tests.integration.conftest import body
from tests.integration.test_clock import once_at
from tests.integration.test_intake import ref_of
from tests.integration.test_sellers import H, LUMIERE, T0, linked, open_complaint, registry, to  # noqa: F401
from tests.integration.test_staff import CS, GOOD_AR, complaint, staff_reply
from tests.support import SUPPORT, mail

FORGED_AR = "mx.google.com; dkim=none; spf=softfail smtp.mailfrom=cs@imolocale.test; dmarc=fail header.from=imolocale.test"


def with_photo(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Camille Martin <camille@example.fr>", SUPPORT, "Colis abîmé"
    msg["Message-ID"] = message_id
    msg.set_content("Bonjour, le colis est arrivé abîmé, voici une photo.")
    msg.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="colis.png")
    return msg.as_bytes()


@pytest.fixture
def two(desk):
    """Camille wrote twice without the tag: A (with a photo) then B; both acknowledged and notified."""
    desk.deliver(with_photo("<a1@example.fr>"))
    desk.once()
    desk.deliver(mail(message_id="<b1@example.fr>", subject="Toujours rien", body="Mon colis n'est pas arrivé."))
    desk.once()
    acks = desk.sent(to="camille@example.fr")
    notes = desk.sent(to=CS)
    a, b = ref_of(acks[0]), ref_of(acks[1])
    note_a = next(n for n in notes if ref_of(n) == a)
    desk.sink.clear()
    return a, b, note_a, acks[0]


def events(desk, ref):
    return desk.rows("SELECT e.kind, e.detail, e.merged_from FROM events e JOIN complaints c ON c.id = e.complaint_id "
                     "WHERE c.ref = ? ORDER BY e.at, e.id", ref)


def test_authenticated_staff_merges_by_mail_and_late_mail_naming_a_threads_to_b(desk, two):
    a, b, note_a, ack_a = two
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note_a, f"#merge {b.lower()}\nNous regroupons vos deux demandes.",
                             headers={"Authentication-Results": GOOD_AR}))
    desk.once()
    ra, rb = complaint(desk, a), complaint(desk, b)
    assert ra["status"] == "closed" and ra["merged_into"] == b and ra["next_due"] is None  # A's clock stopped
    assert rb["status"] == "open" and rb["merged_into"] is None and rb["next_due"] is not None
    # A's messages (with the photo) and events are under B, each with the trace of where it came from
    moved = desk.rows("SELECT m.message_id, m.merged_from, count(t.id) n FROM messages m "
                      "LEFT JOIN attachments t ON t.message_row = m.id WHERE m.complaint_id = ? "
                      "AND m.merged_from IS NOT NULL GROUP BY m.id", rb["id"])
    assert {r["merged_from"] for r in moved} == {ra["id"]}
    assert "<a1@example.fr>" in {r["message_id"] for r in moved} and sum(r["n"] for r in moved) == 1
    assert desk.rows("SELECT count(*) n FROM messages WHERE complaint_id = ?", ra["id"])[0]["n"] == 0
    on_b = events(desk, b)
    assert any(e["kind"] == "opened" and e["merged_from"] == ra["id"] for e in on_b)
    [merged] = [e for e in on_b if e["kind"] == "merged"]
    assert json.loads(merged["detail"])["source"] == a
    assert [e["kind"] for e in events(desk, a)] == ["closed", "merged_into"]
    # A's customer: exactly one mail, under B's reference, naming both, with the staff text
    [told] = desk.sent(to="camille@example.fr")
    assert ref_of(told) == b and a in body(told) and b in body(told) and "regroupons vos deux" in body(told)
    [reply] = desk.sent(to=CS)
    assert "Fusion faite" in reply["Subject"] and "1 attachment(s)" in body(reply)
    desk.sink.clear()
    # a late reply tagged with A, and one answering A's acknowledgement without a tag, both join B
    desk.deliver(mail(message_id="<late1@example.fr>", subject=f"Re: [{a}] Colis abîmé", body="Alors ?"))
    desk.deliver(mail(message_id="<late2@example.fr>", subject="Re: Colis abîmé", body="Des nouvelles ?",
                      in_reply_to=ack_a["Message-ID"], references=ack_a["Message-ID"]))
    desk.once()
    late = desk.rows("SELECT m.message_id, c.ref FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                     "WHERE m.message_id IN ('<late1@example.fr>', '<late2@example.fr>')")
    assert {r["ref"] for r in late} == {b} and len(late) == 2
    assert complaint(desk, a)["status"] == "closed" and desk.rows("SELECT count(*) n FROM complaints")[0]["n"] == 2
    assert all(ref_of(m) == b for m in desk.sent(to=CS))


def test_a_forged_merge_is_obeyed_in_nothing(desk, two):
    a, b, note_a, _ = two
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note_a, f"#merge {b}", headers={"Authentication-Results": FORGED_AR}))
    desk.once()
    assert complaint(desk, a)["merged_into"] is None and complaint(desk, a)["status"] == "open"
    assert desk.sent(to="camille@example.fr") == []
    assert not [e for e in events(desk, b) if e["kind"] == "merged"]


def test_refusals_by_mail_say_why_and_change_nothing(desk, two):
    a, b, note_a, _ = two
    desk.deliver(mail(sender="paul@example.fr", name="Paul", message_id="<p1@example.fr>", subject="Remboursement"))
    desk.once()
    paul = complaint(desk, ref_of(desk.sent(to="paul@example.fr")[0]))["ref"]
    ghost = refs.new_reference("IMO")
    cases = [(a, "cannot be merged into itself"), (ghost, f"there is no complaint {ghost}"),
             (paul, "another customer's complaint")]
    for target, reason in cases:
        desk.sink.clear()
        desk.deliver(staff_reply(note_a, f"#merge {target}\nTexte pour la cliente."))
        desk.once()
        [reply] = desk.sent(to=CS)
        assert "Fusion refusée" in reply["Subject"] and reason in body(reply)
        assert "pas été transmis" in body(reply)
        assert desk.sent(to="camille@example.fr") == []
        assert complaint(desk, a)["merged_into"] is None and complaint(desk, a)["status"] == "open"
    desk.sink.clear()
    desk.deliver(staff_reply(note_a, f"#merge {paul} force"))
    desk.once()
    assert complaint(desk, a)["merged_into"] == paul
    [told] = desk.sent(to="camille@example.fr")  # A's customer, not Paul, and in her own thread's language
    assert ref_of(told) == paul and desk.sent(to="paul@example.fr") == []
    assert "forced" in body(desk.sent(to=CS)[0])


def test_cli_merge_and_its_refusals(desk, two):
    a, b, _, _ = two
    r = desk.cli("resolve", a, "--note", "Réglé.")
    assert r.returncode == 0, r.stderr
    desk.sink.clear()
    r = desk.cli("merge", a, b, "--by", "julie")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1 and f"{a} merged into {b}" in r.stdout and "message(s)" in r.stdout
    assert "clock is unchanged" in r.stdout  # a resolved complaint joined an open one: said
    assert complaint(desk, a)["merged_into"] == b and complaint(desk, b)["status"] == "open"
    assert len(desk.sent(to="camille@example.fr")) == 1
    assert any(e["kind"] == "merged" and json.loads(e["detail"])["staff"] == "julie" for e in events(desk, b))
    shown_b, shown_a = desk.cli("show", b).stdout, desk.cli("show", a).stdout
    assert f"merged_from={a}" in shown_b and "Colis abîmé" in shown_b  # the merged timeline
    assert f"merged into {b}" in shown_a
    again = desk.cli("merge", a, b)
    assert again.returncode == 1 and "already merged" in again.stderr
    into_merged = desk.cli("merge", b, a)
    assert into_merged.returncode == 1 and f"merge into {b}" in into_merged.stderr
    unknown = desk.cli("merge", "IMO-ZZZZZZ", b)
    assert unknown.returncode == 1 and "no complaint" in unknown.stderr


def test_a_waiting_seller_outreach_moves_to_the_survivor_and_the_seller_answer_lands_there(registry):
    """A was linked to a seller and waits for their answer; merged into B, the outreach (its clock,
    reminders and strikes) and the seller link go with it, and the seller's answer to A's mail joins B."""
    desk = registry
    a, outreach = linked(desk)
    b, _ = open_complaint(desk, at=T0 + 2 * H, text="Je réécris : toujours pas de lampe.", subject="Lampe")
    assert a != b
    r = desk.cli("merge", a, b, "--by", "julie")
    assert r.returncode == 0, r.stderr
    [row] = desk.rows("SELECT c.ref FROM outreach o JOIN complaints c ON c.id = o.complaint_id")
    assert row["ref"] == b and complaint(desk, b)["seller_id"] == "S-1042"
    desk.deliver(mail(sender=LUMIERE, name="Boutique Lumière", subject=f"Re: {outreach['Subject']}",
                      body="Colis reparti, suivi XY123.", in_reply_to=outreach["Message-ID"]), msg_time=T0 + 3 * H)
    sent = once_at(desk, T0 + 3 * H)
    [note] = to(sent, CS)
    assert refs.tag(b) in note["Subject"] and "XY123" in body(note)
    [answered] = desk.rows("SELECT status FROM outreach")
    assert answered["status"] == "answered"
