"""Sellers end to end on real Dovecot and SMTP (P11-P13): outreach on the
customer's behalf, threading seller answers, the outreach clock, contact
details when outreach failed, strikes, flags, admin decisions, web hooks."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from freezegun import freeze_time

from tests.integration.conftest import body
from tests.integration.test_intake import ref_of
from tests.integration.test_clock import once_at
from tests.support import mail

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
CS = "cs@imolocale.test"
ADMIN = "admin@imolocale.test"
CUSTOMER = "camille@example.fr"
LUMIERE = "contact@boutique-lumiere.example"
THEIERE = "service@theiere-bleue.example"
SELLERS_CSV = ("id;shop_name;address;phone\n"
               f"S-1042;Boutique Lumière;{LUMIERE};+33 1 42 68 53 00\n"
               f"S-1043;La Théière Bleue;{THEIERE};\n")


def cli_at(desk, when: datetime, *args: str) -> tuple[int, str]:
    with freeze_time(when, real_asyncio=True):
        return desk.cli_here(*args)


def to(mails, address: str) -> list:
    return [m for m in mails if address in str(m["To"])]


def raw_to(desk, address: str) -> list[bytes]:
    return [c.data for c in desk.sink.messages if address in c.rcpt_tos]


@pytest.fixture
def registry(desk):
    path = desk.dir / "sellers.csv"
    path.write_text(SELLERS_CSV, encoding="utf-8")
    code, out = cli_at(desk, T0 - 24 * H, "seller", "import", str(path), "--by", "ops")
    assert code == 0, out
    return desk


def open_complaint(desk, at=T0, text="Bonjour, ma commande 784512 n'est jamais arrivée.", **kw) -> tuple[str, object]:
    """A complaint from Camille; returns its ref and the staff notification."""
    desk.deliver(mail(body=text, **kw), msg_time=at)
    sent = once_at(desk, at + timedelta(minutes=1))
    [note] = to(sent, CS)
    return ref_of(note), note


def staff_says(desk, note, text: str, at: datetime) -> list:
    desk.deliver(mail(sender=CS, name="Julie", subject=f"Re: {note['Subject']}", body=text,
                      in_reply_to=note["Message-ID"], references=note["Message-ID"]), msg_time=at)
    return once_at(desk, at + timedelta(minutes=1))


def linked(desk, facts="La cliente n'a jamais reçu la commande 784512 (lampe).") -> tuple[str, object]:
    """A complaint linked to Boutique Lumière by staff mail at T0 + 1 h; the outreach mail."""
    ref, note = open_complaint(desk)
    sent = staff_says(desk, note, f"#seller S-1042\n{facts}", T0 + H)
    [outreach] = to(sent, LUMIERE)
    return ref, outreach


def events(desk, ref: str) -> list[str]:
    return [r["kind"] for r in desk.rows("SELECT e.kind FROM events e JOIN complaints c ON c.id = e.complaint_id "
                                         "WHERE c.ref = ? ORDER BY e.id", ref)]


def test_import_list_and_show(registry):
    desk = registry
    bad = desk.dir / "more.json"
    bad.write_text(json.dumps({"sellers": [
        {"id": "S-1042", "shop_name": "Boutique Lumière Paris", "email": LUMIERE},  # update
        {"id": "S-2000", "shop_name": "Nouvelle Boutique", "address": "not-an-address"},
        {"id": "S-2001", "shop_name": "Copie", "address": THEIERE},
        {"id": "S-2002", "shop_name": "Le Support", "address": "support@imolocale.test"},
        {"id": "S-2003", "address": "a@b.example"},
        {"id": "S-2004", "shop_name": "Vélos Martin", "address": "Velos@Martin.example", "phone": "06 12 34 56 78"},
    ]}), encoding="utf-8")
    result = desk.cli("seller", "import", str(bad))
    assert result.returncode == 1  # some rows were refused; the others are loaded
    out = result.stdout
    assert "1 added, 1 updated, 0 unchanged, 4 rejected" in out
    assert "item 2: address 'not-an-address' is not an e-mail address" in out
    assert "item 3: address service@theiere-bleue.example already belongs to seller S-1043" in out
    assert "item 4: address support@imolocale.test is the support or a staff address" in out
    assert "item 5: shop_name is missing" in out

    listing = desk.cli("seller", "list").stdout
    assert "S-2004" in listing and "velos@martin.example" in listing and "3 seller(s)" in listing
    shown = desk.cli("seller", "show", "S-1042").stdout
    assert "Boutique Lumière Paris" in shown and "registered" in shown and "updated" in shown
    assert desk.cli("seller", "show", "S-9").returncode == 1


def test_outreach_hides_the_customer_address_and_is_not_relayed(registry):
    desk = registry
    ref, note = open_complaint(desk)
    sent = staff_says(desk, note, f"#seller S-1042\nLa cliente ({CUSTOMER}) n'a jamais reçu la commande 784512.",
                      T0 + H)
    assert to(sent, CUSTOMER) == []  # facts for the seller are not a reply to the customer
    [outreach] = to(sent, LUMIERE)
    assert str(outreach["Subject"]) == f"[{ref}] Réclamation d'un client de Boutique Lumière"
    assert "support@imolocale.test" in str(outreach["From"])
    text = body(outreach)
    assert "784512" in text and "[adresse du client masquée]" in text and "répondez à ce message avant le" in text
    [raw] = raw_to(desk, LUMIERE)
    assert CUSTOMER.encode() not in raw.lower() and b"Camille" not in raw
    assert b"camille" not in raw.lower()
    row = desk.rows("SELECT seller_id FROM complaints WHERE ref = ?", ref)[0]
    assert row["seller_id"] == "S-1042"
    assert {"seller_linked", "seller_contacted"} <= set(events(desk, ref))
    [o] = desk.rows("SELECT status, sent_at, remind_at, due_at FROM outreach")
    assert o["status"] == "waiting" and o["due_at"] == "2026-11-25T10:01:00+00:00"
    assert o["remind_at"] == "2026-11-24T10:01:00+00:00"


def test_seller_answers_are_threaded_by_tag_or_headers_and_go_to_staff(registry):
    desk = registry
    ref, outreach = linked(desk)
    desk.deliver(mail(sender=LUMIERE, name="Boutique Lumière", subject=f"Re: {outreach['Subject']}",
                      body="Bonjour, le colis est reparti ce matin, suivi XY123."), msg_time=T0 + 2 * H)
    desk.deliver(mail(sender=LUMIERE, name="Boutique Lumière", subject="Encore nous",
                      body="Et nous offrons le port.", in_reply_to=outreach["Message-ID"]), msg_time=T0 + 3 * H)
    sent = once_at(desk, T0 + 3 * H)
    assert to(sent, CUSTOMER) == []  # staff decide what the customer sees
    notes = to(sent, CS)
    assert len(notes) == 2 and "XY123" in body(notes[0]) and "PAS été transmise" in body(notes[0])
    msgs = desk.rows("SELECT m.kind, c.ref FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                     "WHERE m.direction = 'in' AND m.from_addr = ?", LUMIERE)
    assert [(m["kind"], m["ref"]) for m in msgs] == [("seller", ref), ("seller", ref)]
    [o] = desk.rows("SELECT status, answered_at FROM outreach")
    assert o["status"] == "answered" and o["answered_at"] == "2026-11-23T11:00:00+00:00"
    assert events(desk, ref).count("seller_answered") == 2
    assert len(desk.rows("SELECT * FROM complaints")) == 1


def test_a_reply_from_another_address_is_not_threaded_as_the_seller(registry):
    desk = registry
    ref, outreach = linked(desk)
    desk.deliver(mail(sender=THEIERE, name="La Théière Bleue", subject=f"Re: {outreach['Subject']}",
                      body="Nous ne sommes pas concernés.", in_reply_to=outreach["Message-ID"]),
                 msg_time=T0 + 2 * H)
    desk.deliver(mail(sender="impostor@evil.example", name="Boutique Lumière", subject=f"Re: {outreach['Subject']}",
                      body="Envoyez-moi l'adresse de la cliente.", in_reply_to=outreach["Message-ID"]),
                 msg_time=T0 + 2 * H)
    sent = once_at(desk, T0 + 2 * H)
    joined = desk.rows("SELECT m.from_addr FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                       "WHERE c.ref = ? AND m.direction = 'in'", ref)
    assert {r["from_addr"] for r in joined} == {CUSTOMER, CS}
    [unthreaded] = desk.rows("SELECT complaint_id, kind FROM messages WHERE from_addr = ?", THEIERE)
    assert unthreaded["complaint_id"] is None and unthreaded["kind"] == "seller"
    staff_note = next(m for m in to(sent, CS) if "Théière" in str(m["Subject"]))
    assert ref in body(staff_note) and "qui ne le concerne pas" in body(staff_note)
    impostor = desk.rows("SELECT ref FROM complaints WHERE customer_addr = 'impostor@evil.example'")
    assert len(impostor) == 1 and impostor[0]["ref"] != ref  # a stranger opens their own complaint
    [o] = desk.rows("SELECT status FROM outreach")
    assert o["status"] == "waiting"
    for m in to(sent, "impostor@evil.example"):
        assert CUSTOMER not in body(m) and "784512" not in body(m)


def test_reminder_halfway_then_failure_at_the_deadline_then_a_late_answer(registry):
    desk = registry
    ref, outreach = linked(desk)  # sent at T0 + 1h01
    assert to(once_at(desk, T0 + 25 * H), LUMIERE) == []  # (the policy clock escalates at 24 h meanwhile)
    sent = once_at(desk, T0 + 25 * H + timedelta(minutes=1))
    [reminder] = to(sent, LUMIERE)
    assert "Rappel" in str(reminder["Subject"]) and f"[{ref}]" in str(reminder["Subject"])
    assert reminder["In-Reply-To"].strip() == outreach["Message-ID"].strip()
    assert CUSTOMER.encode() not in raw_to(desk, LUMIERE)[-1].lower()
    assert to(once_at(desk, T0 + 30 * H), LUMIERE) == []  # one reminder only

    assert to(once_at(desk, T0 + 49 * H), LUMIERE) == []
    assert desk.rows("SELECT status FROM outreach")[0]["status"] == "waiting"
    sent = once_at(desk, T0 + 49 * H + timedelta(minutes=1))
    failed = [m for m in sent if "échouée" in str(m["Subject"])]
    assert len(failed) == 1 and "n'a pas répondu dans le délai" in body(failed[0])
    assert str(failed[0]["To"]) == "cx@imolocale.test"  # the team handling it now (level 3 since 48 h)
    assert to(sent, LUMIERE) == [] and all(LUMIERE not in body(m) for m in to(sent, CUSTOMER))
    [o] = desk.rows("SELECT status, failed_reason, next_due FROM outreach")
    assert (o["status"], o["failed_reason"], o["next_due"]) == ("failed", "deadline", None)
    [strike] = desk.rows("SELECT kind, at FROM seller_strikes")
    assert strike["kind"] == "unanswered" and strike["at"] == "2026-11-25T10:01:00+00:00"
    assert not [m for m in once_at(desk, T0 + 60 * H) if "échouée" in str(m["Subject"])]
    assert len(desk.rows("SELECT * FROM seller_strikes")) == 1  # failed once

    desk.deliver(mail(sender=LUMIERE, subject=f"Re: {outreach['Subject']}", body="Désolés du retard."),
                 msg_time=T0 + 70 * H)
    sent = once_at(desk, T0 + 70 * H)
    [note] = [m for m in sent if "Réponse du vendeur" in str(m["Subject"])]
    assert "après le délai" in body(note)
    [strike] = desk.rows("SELECT kind FROM seller_strikes")
    assert strike["kind"] == "late"  # counted once, as late


def test_contact_request_before_and_after_outreach_failed(registry):
    desk = registry
    ref, outreach = linked(desk)
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body="Pouvez-vous me donner les coordonnées du vendeur ?"),
                 msg_time=T0 + 2 * H)
    sent = once_at(desk, T0 + 2 * H)
    [told] = to(sent, CUSTOMER)
    assert "fait d'abord tout son possible pour communiquer avec le vendeur" in body(told) and LUMIERE not in body(told)
    [staff] = to(sent, CS)
    assert "demande les coordonnées" in str(staff["Subject"]) and "S-1042" in body(staff)

    sent = staff_says(desk, staff, "#seller-failed\nInjoignable par téléphone.", T0 + 3 * H)
    [details] = to(sent, CUSTOMER)  # she had asked: the details go now
    assert LUMIERE in body(details) and "+33 1 42 68 53 00" in body(details) and "Boutique Lumière" in body(details)
    assert "Injoignable" not in body(details)
    assert any("échouée" in str(m["Subject"]) and "viennent de lui être envoyées" in body(m) for m in to(sent, CS))
    assert desk.rows("SELECT count(*) n FROM seller_strikes")[0]["n"] == 0  # staff-declared: no strike

    desk.deliver(mail(sender="john@example.com", name="John", subject="Lamp never arrived",
                      body="Hello, my Boutique Lumière lamp never came. Can I contact the seller directly?"),
                 msg_time=T0 + 4 * H)
    sent = once_at(desk, T0 + 4 * H)
    [ack] = to(sent, "john@example.com")
    assert "first contacts the seller on your behalf" in body(ack) and LUMIERE not in body(ack)
    [new_note] = to(sent, CS)
    assert "Vendeur probable : Boutique Lumière (S-1042" in body(new_note)
    assert "demande les coordonnées directes du vendeur" in body(new_note)

    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body="Je souhaite contacter le vendeur directement."),
                 msg_time=T0 + 5 * H)
    sent = once_at(desk, T0 + 5 * H)
    assert to(sent, CUSTOMER) == []  # she has the details since outreach failed: sent once per disclosure
    [staff] = to(sent, CS)
    assert "de nouveau" in str(staff["Subject"]) and "déjà été envoyées" in body(staff)
    sent = staff_says(desk, staff, "#seller-failed", T0 + 6 * H)  # staff ask again: the details go again
    [again] = to(sent, CUSTOMER)
    assert LUMIERE in body(again)
    kinds = events(desk, ref)
    assert kinds.count("seller_contact_requested") == 2 and kinds.count("seller_details_disclosed") == 2
    history = desk.cli("seller", "show", "S-1042").stdout
    assert history.count("details_disclosed") == 2


def test_strikes_flag_the_seller_and_admins_are_told(registry):
    desk = registry
    desk.write_config(sellers={"flag_after": 2, "window_days": 30})
    ref, outreach = linked(desk)
    sent = staff_says(desk, to(desk.sent(), CS)[0], "#uncooperative refuse de rembourser", T0 + 2 * H)
    assert to(sent, ADMIN) == [] and to(sent, CUSTOMER) == []
    ref2, note2 = open_complaint(desk, at=T0 + 3 * H, subject="Lampe cassée", message_id="<c2@example.fr>")
    sent = staff_says(desk, note2, "#seller contact@boutique-lumiere.example\n#uncooperative ne répond pas au téléphone",
                      T0 + 4 * H)
    [alert] = to(sent, ADMIN)
    assert "Vendeur signalé" in str(alert["Subject"]) and "seller restrict S-1042" in body(alert)
    assert "refuse de rembourser" in body(alert)
    [seller] = desk.rows("SELECT status FROM sellers WHERE id = 'S-1042'")
    assert seller["status"] == "flagged"
    # a third strike tells admins nothing new: they already know
    sent = staff_says(desk, note2, "#uncooperative encore", T0 + 5 * H)
    assert to(sent, ADMIN) == []
    code, shown = cli_at(desk, T0 + 6 * H, "seller", "show", "S-1042")
    assert "status  : flagged" in shown and "3 strike(s) in the last 30 days" in shown


class Hook(BaseHTTPRequestHandler):
    fail_first = 0
    received: list = []

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        failing = Hook.fail_first > 0
        Hook.fail_first -= 1
        Hook.received.append((500 if failing else 204, payload))
        self.send_response(500 if failing else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.fail_first, Hook.received = 1, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/maildesk"
    server.shutdown()
    server.server_close()


def test_admin_decisions_mail_the_seller_show_in_new_complaints_and_call_the_web_hook(registry, hook_server):
    desk = registry
    desk.write_config(sellers={"webhook_url": hook_server})
    code, out = cli_at(desk, T0, "seller", "restrict", "S-1042", "--reason", "trois réclamations sans réponse",
                       "--by", "alice")
    assert code == 0 and "active -> restricted" in out
    [mail_r] = to(desk.sent(), LUMIERE)
    assert str(mail_r["Subject"]) == "Votre compte vendeur Boutique Lumière est restreint"
    assert "trois réclamations sans réponse" in body(mail_r) and body(mail_r).startswith("Bonjour,")

    once_at(desk, T0 + timedelta(minutes=1))  # the web hook answers 500 the first time
    assert [status for status, _ in Hook.received] == [500]
    [pending] = desk.rows("SELECT status, attempts, last_error FROM seller_webhooks")
    assert (pending["status"], pending["attempts"], pending["last_error"]) == ("pending", 1, "HTTP 500")
    _, shown = cli_at(desk, T0 + timedelta(minutes=1), "seller", "show", "S-1042")
    assert "Web hook deliveries pending" in shown and "seller.restricted" in shown
    once_at(desk, T0 + timedelta(minutes=1, seconds=10))  # not due yet: back-off
    assert len(Hook.received) == 1
    once_at(desk, T0 + timedelta(minutes=2))
    assert [status for status, _ in Hook.received] == [500, 204]
    payload = Hook.received[-1][1]
    assert payload["event"] == "seller.restricted" and payload["by"] == "alice"
    assert payload["reason"] == "trois réclamations sans réponse" and payload["seller"]["status"] == "restricted"
    assert payload["id"] == Hook.received[0][1]["id"]  # the same delivery, retried
    [done] = desk.rows("SELECT status, attempts FROM seller_webhooks")
    assert (done["status"], done["attempts"]) == ("delivered", 2)

    ref, note = open_complaint(desk, at=T0 + H, text="Ma lampe de chez Boutique Lumière est cassée.")
    assert "compte RESTREINT" in body(note) and "trois réclamations sans réponse" in body(note)

    code, out = cli_at(desk, T0 + 2 * H, "seller", "terminate", "S-1042", "--reason", "fraude", "--by", "bob")
    assert code == 0
    assert str(to(desk.sent(), LUMIERE)[-1]["Subject"]) == "Votre compte vendeur Boutique Lumière est résilié"
    code, out = cli_at(desk, T0 + 3 * H, "seller", "reinstate", "S-1042", "--reason", "appel gagné", "--by", "carol")
    assert code == 0
    assert str(to(desk.sent(), LUMIERE)[-1]["Subject"]) == "Votre compte vendeur Boutique Lumière est rétabli"
    code, _ = cli_at(desk, T0 + 3 * H, "seller", "reinstate", "S-1042", "--reason", "encore")
    assert code == 1  # already active
    once_at(desk, T0 + 4 * H)
    assert [p["event"] for _, p in Hook.received[2:]] == ["seller.terminated", "seller.reinstated"]
    history = desk.rows("SELECT kind, actor, detail FROM seller_events WHERE seller_id = 'S-1042' "
                        "AND kind IN ('restricted', 'terminated', 'reinstated') ORDER BY id")
    assert [(h["kind"], h["actor"]) for h in history] == [("restricted", "alice"), ("terminated", "bob"),
                                                         ("reinstated", "carol")]
    assert json.loads(history[0]["detail"])["reason"] == "trois réclamations sans réponse"


def test_link_from_the_command_line_then_contact_seller_adds_to_the_waiting_outreach(registry):
    desk = registry
    ref, note = open_complaint(desk)
    sent = staff_says(desk, note, "#contact-seller Avez-vous expédié ?", T0 + H)  # no seller linked yet
    [error] = to(sent, CS)
    assert "no seller is linked" in body(error) and to(sent, LUMIERE) == []

    code, out = cli_at(desk, T0 + 2 * H, "link", ref, "S-1042", "--facts", "Commande 784512 non reçue.", "--by", "julie")
    assert code == 0 and "linked to S-1042" in out
    [first] = to(desk.sent(), LUMIERE)
    assert "784512" in body(first) and "Réclamation d'un client de Boutique Lumière" in str(first["Subject"])
    assert cli_at(desk, T0 + 2 * H, "link", ref, "S-404")[0] == 1

    sent = staff_says(desk, note, "#contact-seller Le client précise : colis attendu avant Noël.", T0 + 3 * H)
    [followup] = to(sent, LUMIERE)
    assert str(followup["Subject"]) == f"[{ref}] Réclamation client : nouveau message" and "avant Noël" in body(followup)
    assert followup["In-Reply-To"].strip() == first["Message-ID"].strip()
    assert to(sent, CUSTOMER) == []
    [o] = desk.rows("SELECT status, due_at FROM outreach")  # one outreach, its deadline unchanged
    assert o["due_at"] == "2026-11-25T11:00:00+00:00"  # linked at T0 + 2 h, + 48 h
    _, shown = cli_at(desk, T0 + 4 * H, "show", ref)
    assert "seller_linked" in shown and "seller_contacted" in shown


def test_the_sample_registry_imports_cleanly(desk):
    from tests.support import ROOT
    result = desk.cli("seller", "import", str(ROOT / "config" / "sellers.sample.csv"))
    assert result.returncode == 0 and "4 added, 0 updated, 0 unchanged, 0 rejected" in result.stdout
    result = desk.cli("seller", "import", str(ROOT / "config" / "sellers.sample.csv"))
    assert "0 added, 0 updated, 4 unchanged, 0 rejected" in result.stdout
