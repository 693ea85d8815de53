"""Corner cases on the seller side (webhooks, the outreach sweep, imports, commands,
explanations, echoes), driven in-process through the real App
(store, templates, workflow) without mail servers: time is passed in, or
frozen with freezegun where the code reads the clock."""
from __future__ import annotations

import json
import logging
import mailbox
import shutil
import socket
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy as email_policy
from pathlib import Path

import pytest

from maildesk.core import sellers
from maildesk.adapters import webhook
from maildesk.store import webhooks
from maildesk.app import App
from maildesk.config import load
from maildesk.lock import InstanceLock
from maildesk.store.db import iso
from maildesk.outbound.templates import DEFAULT_DIR
from tests.support import config_dict, mail, maildesk, write_config

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
CS = "cs@imolocale.test"
CUSTOMER = "camille@example.fr"
LUMIERE = "contact@boutique-lumiere.example"


# --- helpers ------------------------------------------------------------------------

def make_app(directory: Path, **sections) -> App:
    path = write_config(directory / "maildesk.toml", config_dict(**sections))
    return App(load(path))


@pytest.fixture
def app(tmp_path):
    made = make_app(tmp_path)
    yield made
    made.close()


def register(app, seller_id="S-1042", shop="Boutique Lumière", address=LUMIERE, phone="+33 1 42 68 53 00"):
    with app.store.transaction():
        app.workflow.sellers.registry.add(sellers.Row(seller_id, shop, address, phone), T0 - 24 * H, "ops")


def receive(app, raw: bytes, at: datetime):
    with app.store.transaction():
        return app.workflow.receive(raw, at, at)


def open_complaint(app, at=T0, sender=CUSTOMER, **kw) -> str:
    outcome = receive(app, mail(sender=sender, date=at, **kw), at)
    assert outcome.action == "processed" and outcome.ref
    return outcome.ref


def staff(app, ref: str, text: str, at: datetime):
    return receive(app, mail(sender=CS, name="Julie", subject=f"Re: [{ref}] Colis", body=text, date=at), at)


def queued(app, to: str | None = None, since_id: int = 0) -> list[dict]:
    rows = app.store.all("SELECT * FROM outbox WHERE id > ? ORDER BY id", since_id)
    out = []
    for r in rows:
        msg = message_from_bytes(r["raw"], policy=email_policy.default)
        body = msg.get_body(preferencelist=("plain",)).get_content()
        item = {**dict(r), "rcpt": json.loads(r["rcpt"]), "body": body, "msg": msg}
        if to is None or to in item["rcpt"]:
            out.append(item)
    return out


def last_id(app) -> int:
    return app.store.scalar("SELECT max(id) FROM outbox") or 0


def events(app, ref: str) -> list[str]:
    return [r["kind"] for r in app.store.all("SELECT e.kind FROM events e JOIN complaints c ON c.id = e.complaint_id "
                                             "WHERE c.ref = ? ORDER BY e.id", ref)]


def linked(app, at=T0, **kw) -> str:
    ref = open_complaint(app, at=at, **kw)
    staff(app, ref, "#seller S-1042\nCommande 784512 jamais reçue.", at + H)
    return ref


# --- 1. web hooks and the outreach clock survive one bad row -------------------------------

@pytest.fixture
def not_http():
    """A server that answers every connection with a line that is not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.6 not a web server\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()


def enqueue(app, url: str, n: int = 1) -> list[str]:
    register(app)
    with app.store.transaction():
        return [webhooks.add(app.store, url, "S-1042", "seller.restricted", {"n": i}, T0) for i in range(n)]


def test_a_receiver_answering_non_http_is_a_failed_attempt_retried_with_back_off(app, not_http):
    enqueue(app, not_http)
    assert webhook.deliver_due(app.store, T0) == 0  # BadStatusLine no longer escapes the clock tick
    [row] = app.store.all("SELECT * FROM seller_webhooks")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith("BadStatusLine")
    assert row["next_attempt_at"] == iso(T0 + timedelta(seconds=30))


def test_deliver_due_logs_and_records_a_row_that_raises_and_goes_on(app, caplog):
    first, second = enqueue(app, "http://127.0.0.1:9/hook", n=2)

    def send(url, payload, delivery_id):
        if delivery_id == first:
            raise RuntimeError("boom")
        return True, "HTTP 204"

    with caplog.at_level(logging.INFO, logger="maildesk"):
        assert webhook.deliver_due(app.store, T0, send=send) == 1
    rows = {r["delivery_id"]: r for r in app.store.all("SELECT * FROM seller_webhooks")}
    assert rows[second]["status"] == "delivered"
    assert (rows[first]["status"], rows[first]["attempts"], rows[first]["last_error"]) == (
        "pending", 1, "RuntimeError: boom")
    assert rows[first]["next_attempt_at"] == iso(T0 + timedelta(seconds=30))
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == "webhook_error" and error.exc_info is not None


def test_the_outreach_sweep_rolls_back_a_row_that_raises_and_goes_on(app, caplog):
    register(app)
    bad = linked(app)
    good = linked(app, sender="john@example.com", message_id="<john@example.com>")
    desk = app.workflow.sellers
    bad_id = app.store.complaint(bad)["id"]

    def flaky(point, outreach=None, **facts):  # the workflow's fault hook, at each outreach step
        if point == "outreach_step" and outreach["complaint_id"] == bad_id:
            desk.registry.update_outreach(outreach["id"], reminded_at=now)  # half done, then it breaks
            raise RuntimeError("broken template")

    app.workflow.fault = flaky
    before = last_id(app)
    now = T0 + 26 * H  # past both reminders
    with caplog.at_level(logging.INFO, logger="maildesk"):
        assert desk.sweep(now) == 2
    [reminder] = queued(app, LUMIERE, before)
    assert reminder["kind"] == "reminder" and f"[{good}]" in reminder["subject"]
    [o] = app.store.all("SELECT * FROM outreach WHERE complaint_id = ?", bad_id)
    assert o["reminded_at"] is None and o["status"] == "waiting"  # its savepoint rolled back
    assert o["next_due"] == iso(now + H)  # not due again at once; a later tick retries
    assert "seller_sweep_failed" in events(app, bad)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == "seller_sweep_failed" and error.exc_info is not None

    app.workflow.fault = None  # fixed: the next tick reminds it
    before = last_id(app)
    desk.sweep(now + 2 * H)
    assert [m["kind"] for m in queued(app, LUMIERE, before)] == ["reminder"]


# --- 2. import-mbox leaves nothing due, and never runs beside the daemon -------------------------

def takeout(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(str(path))
    for raw in messages:
        box.add(mailbox.mboxMessage(raw))
    box.flush()
    box.close()
    return path


OLD = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)


def history() -> list[bytes]:
    return [
        mail(message_id="<first@example.fr>", date=OLD, body="Bonjour, ma commande n'est jamais arrivée."),
        mail(sender=CS, name="Julie", subject="Re: Colis jamais reçu", message_id="<julie@imolocale.test>",
             in_reply_to="<first@example.fr>", references="<first@example.fr>", date=OLD + H,
             body="#seller S-1042\nLa cliente n'a jamais reçu sa commande."),
        mail(sender="john@example.com", name="John", subject="Broken teapot", message_id="<john@example.com>",
             date=OLD + 2 * H, body="Hello, my teapot arrived broken."),
        mail(sender="zoe@example.com", name="Zoé", subject="Retard", message_id="<zoe@example.com>",
             date=OLD + 3 * H, body="Toujours rien."),
    ]


def test_an_interrupted_import_leaves_no_complaint_or_outreach_due(app, tmp_path):
    from maildesk.service.importer import import_mbox
    register(app)
    path = takeout(tmp_path / "Takeout.mbox", history())
    calls = []

    def receive_then_fail(point, arrived_at=None, **facts):  # the workflow's fault hook
        if point == "receive":
            calls.append(arrived_at)
            if len(calls) == 4:
                raise sqlite3.OperationalError("disk I/O error")  # the import stops here

    app.workflow.fault = receive_then_fail
    with pytest.raises(sqlite3.OperationalError):
        import_mbox(app, path)
    now = datetime.now(timezone.utc)
    complaints = app.store.all("SELECT * FROM complaints ORDER BY id")
    assert [c["customer_addr"] for c in complaints] == [CUSTOMER, "john@example.com"]
    assert all(c["next_due"] is None for c in complaints)
    assert app.store.due_complaints(now) == []
    [o] = app.store.all("SELECT * FROM outreach")  # opened by Julie's #seller in the old mail
    assert o["next_due"] is None and app.workflow.sellers.registry.due_outreach(now) == []
    assert all("imported" in events(app, c["ref"]) for c in complaints)
    assert app.store.all("SELECT * FROM outbox") == []

    app.workflow.fault = None
    more = takeout(tmp_path / "more.mbox", [mail(subject="Re: Colis jamais reçu", message_id="<again@example.fr>",
                                                 in_reply_to="<first@example.fr>", date=OLD + 5 * H,
                                                 body="Toujours rien reçu.")])
    import_mbox(app, more)  # a later import adds to a complaint of the first: still no clock
    assert app.store.due_complaints(now) == []


def test_import_mbox_fails_in_one_line_while_the_daemon_runs(tmp_path):
    path = write_config(tmp_path / "maildesk.toml", config_dict())
    box = takeout(tmp_path / "Takeout.mbox", history()[:1])
    daemon = InstanceLock(load(path).database_path)
    daemon.acquire()  # what `maildesk run` holds
    try:
        result = maildesk(path, "import-mbox", str(box))
    finally:
        daemon.release()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already running" in lines[0] and "stop it before importing" in lines[0]
    assert "Traceback" not in result.stderr
    made = App(load(path))
    try:
        assert made.store.all("SELECT * FROM complaints") == []
    finally:
        made.close()
    result = maildesk(path, "import-mbox", str(box))  # the daemon stopped: it goes, and lets go of the lock
    assert result.returncode == 0 and "1 complaint(s) created" in result.stdout
    InstanceLock(load(path).database_path).acquire()


# --- 3. the leak check matches whole addresses -----------------------------------------------------

def test_a_customer_address_inside_the_sellers_address_is_no_leak(app):
    register(app, address="la@shop.fr")
    ref = open_complaint(app, sender="a@shop.fr")
    staff(app, ref, "#seller S-1042\nCommande 784512 jamais reçue.", T0 + H)  # used to raise SellerLeak
    [outreach] = queued(app, "la@shop.fr")
    assert "784512" in outreach["body"] and "seller_contacted" in events(app, ref)


# --- 4. where staff text goes does not depend on command order ----------------------------------------

@pytest.mark.parametrize("commands", ["#resolve\n#seller S-1042", "#seller S-1042\n#resolve"])
def test_resolve_and_seller_in_any_order_send_the_text_to_the_seller_only(app, commands):
    register(app)
    ref = open_complaint(app)
    before = last_id(app)
    staff(app, ref, f"{commands}\nFacts for the seller only: order 784512.", T0 + H)
    [resolution] = queued(app, CUSTOMER, before)
    assert resolution["kind"] == "resolution" and "Facts for the seller" not in resolution["body"]
    [outreach] = queued(app, LUMIERE, before)
    assert "Facts for the seller only" in outreach["body"]
    assert app.store.complaint(ref)["status"] == "resolved"


@pytest.mark.parametrize("commands", ["#ask\n#uncooperative ne répond pas", "#uncooperative ne répond pas\n#ask"])
def test_ask_with_a_seller_command_goes_without_the_text(app, commands):
    register(app)
    ref = linked(app)
    before = last_id(app)
    staff(app, ref, f"{commands}\nNote interne sur le vendeur.", T0 + 2 * H)
    [ask] = queued(app, CUSTOMER, before)
    assert ask["kind"] == "ask" and "Note interne" not in ask["body"]
    [strike] = app.store.all("SELECT reason FROM seller_strikes")
    assert "Note interne" in strike["reason"]


def test_a_note_with_other_commands_is_refused(app):
    ref = open_complaint(app)
    before = last_id(app)
    staff(app, ref, "#note\n#escalate\nLe client a appelé.", T0 + H)
    [error] = queued(app, CS, before)
    assert error["kind"] == "command_error" and "#note cannot be combined" in error["body"]
    assert app.store.complaint(ref)["level"] == 1 and "note" not in events(app, ref)


# --- 5. no loop through the seller-contact answers ---------------------------------------------------------

def ask_again(app, ref, at, text="Pouvez-vous me donner les coordonnées du vendeur ?"):
    before = last_id(app)
    receive(app, mail(subject=f"Re: [{ref}] Colis", body=text, date=at), at)
    return queued(app, CUSTOMER, before), queued(app, CS, before)


def test_the_explanation_and_the_details_go_once_each(app):
    register(app)
    ref = linked(app)
    to_customer, to_staff = ask_again(app, ref, T0 + 2 * H)
    assert [m["kind"] for m in to_customer] == ["update"]  # the explanation
    [told] = to_staff
    assert "demande les coordonnées" in told["subject"] and "de nouveau" not in told["subject"]

    to_customer, to_staff = ask_again(app, ref, T0 + 2 * H + timedelta(minutes=10))
    assert to_customer == []  # still pending: explained already
    assert [m["kind"] for m in to_staff] == ["notify"] and "coordonnées" not in to_staff[0]["subject"]
    assert "de nouveau" not in to_staff[0]["subject"]  # staff were told 10 minutes ago: only the usual notice

    to_customer, to_staff = ask_again(app, ref, T0 + 4 * H)
    assert to_customer == []
    [again] = to_staff
    assert "de nouveau" in again["subject"] and "rien ne lui a été envoyé" in again["body"]

    before = last_id(app)
    app.workflow.sellers.sweep(T0 + 50 * H)  # the seller never answered: outreach fails, she asked
    [details] = queued(app, CUSTOMER, before)
    assert LUMIERE in details["body"] and details["kind"] == "contact_details"

    to_customer, to_staff = ask_again(app, ref, T0 + 51 * H, "Je veux contacter le vendeur directement.")
    assert to_customer == []  # she has them: once per disclosure
    [again] = to_staff
    assert "de nouveau" in again["subject"] and "déjà été envoyées" in again["body"]
    assert events(app, ref).count("seller_details_disclosed") == 1


def test_a_new_outreach_state_allows_one_more_explanation(app):
    register(app)
    ref = open_complaint(app, body="Bonjour, je voudrais les coordonnées du vendeur.")
    [ack] = queued(app, CUSTOMER)
    assert ack["kind"] == "ack"  # the acknowledgement explains (no seller linked yet)
    to_customer, _ = ask_again(app, ref, T0 + H)
    assert to_customer == []  # same state: the acknowledgement said it already
    staff(app, ref, "#seller S-1042\nCommande 784512.", T0 + 2 * H)
    to_customer, _ = ask_again(app, ref, T0 + 3 * H)
    assert [m["kind"] for m in to_customer] == ["update"]  # now linked: "we have written to them"
    assert "attendons sa réponse" in to_customer[0]["body"]


def test_our_own_answers_echoed_back_are_not_requests(app):
    """A robot that sends our mail back unquoted must not start a loop."""
    register(app)
    ref = linked(app)
    [pending], _ = ask_again(app, ref, T0 + 2 * H)
    echoed = f"Your message:\n{pending['body']}"
    before = last_id(app)
    receive(app, mail(subject=f"Re: [{ref}] Colis", body=echoed, date=T0 + 5 * H), T0 + 5 * H)
    assert queued(app, CUSTOMER, before) == []
    assert events(app, ref).count("seller_contact_requested") == 1


# --- 6. outbox --retry never re-queues trial mail ----------------------------------------------------------

def test_retry_by_id_puts_back_failed_mail_only(app):
    from tests.outbox_rows import queue_mail
    ids = queue_mail(app, 3)
    rows = [app.store.one("SELECT id FROM outbox WHERE message_id = ?", m)["id"] for m in ids]
    with app.store.transaction():
        for row_id, status in zip(rows, ("dry-run", "failed", "sent")):
            app.store.update("outbox", row_id, {"status": status})
    dry, failed, sent = rows
    assert app.outbox.retry(T0, dry) == 0
    assert app.outbox.retry(T0, sent) == 0
    assert app.outbox.retry(T0, failed) == 1
    assert app.outbox.retry(T0) == 1  # --all: only the failed (now queued) one
    statuses = [app.store.one("SELECT status FROM outbox WHERE id = ?", r)["status"] for r in rows]
    assert statuses == ["dry-run", "queued", "sent"]


# --- 7. a seller who writes as a customer -------------------------------------------------------------------

def test_a_seller_writing_about_their_own_purchase_opens_a_complaint(app):
    register(app)
    ref = open_complaint(app, sender=LUMIERE, name="Boutique Lumière", subject="Commande jamais reçue",
                         body="Bonjour, j'ai commandé une théière il y a trois semaines, rien reçu.")
    complaint = app.store.complaint(ref)
    assert complaint["customer_addr"] == LUMIERE and complaint["seller_id"] is None
    [ack] = queued(app, LUMIERE)
    assert ack["kind"] == "ack" and ref in ack["subject"]
    kinds = [r["kind"] for r in app.store.all("SELECT kind FROM seller_events WHERE seller_id = 'S-1042'")]
    assert "wrote_as_customer" in kinds

    before = last_id(app)
    receive(app, mail(sender=LUMIERE, subject=f"Re: {ack['subject']}", body="Toujours rien.",
                      in_reply_to=ack["message_id"], date=T0 + H), T0 + H)
    assert len(app.store.all("SELECT * FROM complaints")) == 1  # their reply joins their own complaint
    assert [m["kind"] for m in app.store.messages(complaint["id"]) if m["direction"] == "in"] == ["customer"] * 2
    assert [m["kind"] for m in queued(app, CS, before)] == ["notify"]


def test_a_seller_mail_carrying_our_tag_or_thread_stays_unthreaded(app):
    register(app)
    ref = open_complaint(app)  # Camille's, not linked to the seller
    receive(app, mail(sender=LUMIERE, subject=f"Re: [{ref}] Colis", body="Qui est-ce ?", date=T0 + H), T0 + H)
    with app.store.transaction():
        app.workflow.sellers.sanctions.decide("S-1042", "restrict", "trop de plaintes", "alice", T0 + H)
    [decision] = queued(app, LUMIERE)
    receive(app, mail(sender=LUMIERE, subject=f"Re: {decision['subject']}", body="Pourquoi ?",
                      in_reply_to=decision["message_id"], date=T0 + 2 * H), T0 + 2 * H)
    assert [c["ref"] for c in app.store.all("SELECT ref FROM complaints")] == [ref]  # no complaint opened
    unthreaded = app.store.all("SELECT complaint_id FROM messages WHERE from_addr = ?", LUMIERE)
    assert [m["complaint_id"] for m in unthreaded] == [None, None]
    assert len([m for m in queued(app, CS) if "Message du vendeur" in m["subject"]]) == 2


# --- 8. the seller hint's wording lives in the templates ---------------------------------------------

def test_the_seller_hint_is_worded_by_its_template(tmp_path):
    custom = tmp_path / "templates"
    shutil.copytree(DEFAULT_DIR, custom)
    (custom / "fr" / "staff_seller_hint.txt").write_text(
        "{{ seller.shop_name }} [{{ status }}] {{ status_reason or '' }} #seller {{ seller.id }}\n", encoding="utf-8")
    made = make_app(tmp_path, policy={"templates": str(custom)})
    try:
        register(made)
        with made.store.transaction():
            made.workflow.sellers.sanctions.decide("S-1042", "restrict", "trop de plaintes", "alice", T0)
        seller = made.workflow.sellers.registry.get("S-1042")
        hint = made.workflow.sellers.describe(seller)
        assert hint == "Boutique Lumière [restricted] trop de plaintes #seller S-1042"
    finally:
        made.close()


@pytest.mark.parametrize("lang, expected", [
    ("fr", "Boutique Lumière (S-1042, contact@boutique-lumiere.example) — compte RESTREINT depuis le 23/11/2026 : "
           "trop de plaintes — pour le lier : #seller S-1042"),
    ("en", "Boutique Lumière (S-1042, contact@boutique-lumiere.example) — account RESTRICTED since 23/11/2026: "
           "trop de plaintes — to link it: #seller S-1042"),
])
def test_the_default_hint_templates_in_both_languages(tmp_path, lang, expected):
    made = make_app(tmp_path, policy={"language": lang})
    try:
        register(made)
        seller = made.workflow.sellers.registry.get("S-1042")
        assert made.workflow.sellers.describe(seller) == (
            "Boutique Lumière (S-1042, contact@boutique-lumiere.example) — "
            + ("pour le lier : #seller S-1042" if lang == "fr" else "to link it: #seller S-1042"))
        with made.store.transaction():
            made.workflow.sellers.sanctions.decide("S-1042", "restrict", "trop de plaintes", "alice", T0)
        assert made.workflow.sellers.describe(made.workflow.sellers.registry.get("S-1042")) == expected
    finally:
        made.close()
