"""The admin commands through the real `maildesk` command, against real
Dovecot and SMTP: status, check, init, list, outbox, quarantine, digest,
and the log a real `once` leaves behind."""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maildesk.lock import InstanceLock
from maildesk.testing.localstack import free_port
from tests.integration.conftest import Desk, body
from tests.integration.test_intake import ref_of
from tests.support import ROOT, SUPPORT, config_dict, mail, maildesk, write_config

NOW = datetime.now(timezone.utc)


def parsed(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- status and check ---------------------------------------------------------

@pytest.mark.sqlite_only  # a running daemon played by the SQLite file's lock (PostgreSQL: test_standby.py)
def test_status_reports_daemon_servers_backlog_and_deadlines(desk):
    desk.deliver(mail(subject="Colis jamais reçu"))
    desk.once()
    result = desk.cli("status", "--json")
    assert result.returncode == 2, result.stderr  # down: no daemon runs (issue 14)
    doc = json.loads(result.stdout)
    assert doc["daemon"]["running"] is False and doc["daemon"]["pid"] is None  # PostgreSQL adds host, standbys
    assert doc["mailbox"]["ok"] and doc["smtp"]["ok"]
    assert doc["last_poll_seconds_ago"] is not None and doc["outbox"]["queued"] == 0
    assert doc["open"] == {"1": 1, "2": 0, "3": 0, "total": 1}
    [nxt] = doc["next_deadlines"]
    assert nxt["deadline"] == "24h" and nxt["level"] == 1

    lock = InstanceLock(desk.dir / "maildesk.db")
    lock.acquire()  # as a running daemon holds it
    try:
        result = desk.cli("status")
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    assert f"daemon      running (pid {os.getpid()})" in result.stdout
    assert "open        1: level 1 1, level 2 0, level 3 0" in result.stdout
    assert re.search(r"next deadlines\n  \d{4}-\d\d-\d\d \d\d:\d\d \+0[12]:00  24h  IMO-", result.stdout)  # Paris

    desk.write_config(smtp={"port": free_port()})
    lock.acquire()
    try:
        result = desk.cli("status")
    finally:
        lock.release()
    assert result.returncode == 1  # degraded
    assert "smtp        FAIL" in result.stdout and "nothing accepts connections" in result.stdout


def test_check_passes_then_names_what_to_fix(desk):
    result = desk.cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()[:4]] == [
        ["ok", "config"], ["ok", "database"], ["ok", "imap"], ["ok", "imap"]]
    assert "INBOX: 0 message(s) waiting" in result.stdout and result.stdout.rstrip().endswith("all good")

    desk.write_config(mailbox={"password": "wrong"}, smtp={"port": free_port()})
    doc = json.loads(desk.cli("check", "--json").stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert doc["ok"] is False
    assert not checks["imap login"]["ok"] and "username" in checks["imap login"]["hint"]
    assert not checks["smtp login"]["ok"] and "smtp.host, smtp.port and smtp.security" in checks["smtp login"]["hint"]

    desk.write_config(mailbox={"password": None, "password_env": "MAILDESK_TEST_UNSET"})
    result = desk.cli("check")
    assert result.returncode == 1
    assert "FAIL  imap login   mailbox.password_env names MAILDESK_TEST_UNSET" in result.stdout

    desk.write_config(policy={"timezone": "Mars/Olympus"})
    result = desk.cli("check")
    assert result.returncode == 2 and "policy.timezone" in result.stderr


def test_gmail_login_failures_hint_at_app_passwords():
    from maildesk.adapters import probe
    from tests.support import make_config
    cfg = make_config(mailbox={"host": "imap.gmail.com", "password": None, "password_env": "MAILDESK_IMAP_PASSWORD"})
    assert "app password" in probe.hint("mailbox", cfg.mailbox, "auth")
    assert "2-Step Verification" in probe.hint("mailbox", cfg.mailbox, "auth")
    assert "$MAILDESK_IMAP_PASSWORD" in probe.hint("mailbox", cfg.mailbox, "auth")
    assert "imap.gmail.com, port 993" in probe.hint("mailbox", cfg.mailbox, "refused")


def test_init_writes_the_commented_starter_and_keeps_an_existing_one():
    target = Path(tempfile.mkdtemp(prefix="maildesk-init-")) / "etc" / "maildesk.toml"
    assert maildesk(target, "init").returncode == 0
    assert target.read_text() == (ROOT / "maildesk.toml").read_text()
    target.write_text("# mine\n")
    again = maildesk(target, "init")
    assert again.returncode == 1 and "--force" in again.stderr and target.read_text() == "# mine\n"
    assert maildesk(target, "init", "--force").returncode == 0 and target.read_text().startswith("# maildesk")


# --- list -----------------------------------------------------------------------

def test_list_filters_and_overdue(desk):
    desk.deliver(mail(sender="old@example.fr", subject="Ancien"), msg_time=NOW - timedelta(hours=30))
    desk.deliver(mail(sender="new@example.fr", subject="Récent"), msg_time=NOW - timedelta(hours=1))
    desk.deliver(mail(sender="done@example.fr", subject="Réglé"), msg_time=NOW - timedelta(hours=50))
    desk.once()  # the sweep moves the 30 h and 50 h ones up a level or two
    refs = {r["customer_addr"]: r["ref"] for r in desk.rows("SELECT ref, customer_addr FROM complaints")}
    assert desk.cli("resolve", refs["done@example.fr"], "--note", "ok").returncode == 0

    everything = parsed(desk.cli("list", "--json"))
    assert [r["customer_addr"] for r in everything] == ["new@example.fr", "old@example.fr", "done@example.fr"]
    overdue = parsed(desk.cli("list", "--overdue", "--json"))
    assert [(r["ref"], r["missed"]) for r in overdue] == [(refs["old@example.fr"], ["resolution_team"])]
    assert [r["ref"] for r in parsed(desk.cli("list", "--level", "2", "--json"))] == [refs["old@example.fr"]]
    assert [r["ref"] for r in parsed(desk.cli("list", "--status", "resolved", "--json"))] == [refs["done@example.fr"]]
    assert [r["ref"] for r in parsed(desk.cli("list", "--customer", "NEW@example.fr", "--json"))] == [refs["new@example.fr"]]
    # the same mailbox however it is spelled (+tags): what a flood notice's count covers
    assert [r["ref"] for r in parsed(desk.cli("list", "--customer", "new+colis@example.fr", "--json"))] == [refs["new@example.fr"]]
    text = desk.cli("list", "--overdue")
    assert "missed: resolution_team" in text.stdout and text.stdout.rstrip().endswith("1 complaint(s)")


# --- outbox and quarantine --------------------------------------------------------

def test_outbox_lists_failed_mail_and_retries_it(desk):
    desk.sink.refuse_all()
    desk.deliver(mail(subject="Colis jamais reçu"))
    desk.once()
    failed = parsed(desk.cli("outbox", "--failed", "--json"))
    assert {r["kind"] for r in failed} == {"ack", "notify"} and all(r["status"] == "failed" for r in failed)
    assert "554" in failed[0]["last_error"]
    listing = desk.cli("outbox")
    assert "2 mail(s) waiting or failed" in listing.stdout and "error: 554 5.7.1 refused" in listing.stdout

    desk.sink.accept_all()
    ack = next(r for r in failed if r["kind"] == "ack")
    result = desk.cli("outbox", "--retry", str(ack["id"]))
    assert result.returncode == 0 and "1 sent" in result.stdout
    assert len(desk.sent(to="camille@example.fr")) == 1
    assert desk.cli("outbox", "--all").stdout.startswith("1 mail(s) put back in line: 1 sent")
    assert desk.cli("outbox", "--retry", str(ack["id"])).returncode == 1  # already sent


def test_quarantine_list_and_retry_moves_the_message_back(desk):
    desk.deliver(b"Subject: no sender here\r\nTo: " + SUPPORT.encode() + b"\r\n\r\nhello\r\n")
    desk.deliver(mail(subject="Normal"))
    desk.once()
    assert desk.folder("maildesk/quarantine") == 1
    [item] = parsed(desk.cli("quarantine", "--json"))
    assert item["status"] == "held" and "From" in item["reason"] and item["uid"] is not None
    assert "retry with: maildesk quarantine retry UID" in desk.cli("quarantine", "list").stdout

    result = desk.cli("quarantine", "retry", str(item["uid"]))
    assert result.returncode == 0, result.stderr
    assert desk.folder("maildesk/quarantine") == 0 and desk.folder("INBOX") == 1
    assert [r["status"] for r in desk.rows("SELECT status FROM quarantine")] == ["retried"]
    assert desk.cli("quarantine", "retry", "999").returncode == 1


# --- digest -------------------------------------------------------------------------

def test_digest_print_json_and_send(desk):
    desk.deliver(mail(subject="Colis jamais reçu"))
    desk.once()
    ref = ref_of(desk.sent(to="camille@example.fr")[0])
    text = desk.cli("digest", "--print")
    assert text.returncode == 0 and text.stdout.startswith("Subject: [maildesk] Digest du ")
    assert ref in text.stdout and "RÉCLAMATIONS" in text.stdout
    doc = parsed(desk.cli("digest", "--json"))
    assert doc["counts"]["opened"] == {"day": 1, "total": 1} and doc["open_by_level"] == {"1": 1, "2": 0, "3": 0}
    past = parsed(desk.cli("digest", "--json", "--date", "2020-01-01"))
    assert past["date"] == "2020-01-01" and past["counts"]["opened"]["total"] == 0
    assert desk.cli("digest", "--date", "24/11/2026").returncode == 2

    result = desk.cli("digest", "--send")
    assert result.returncode == 0 and "digest sent to admin@imolocale.test" in result.stdout
    [sent] = desk.sent(to="admin@imolocale.test")
    assert ref in body(sent) and sent.get_body(("html",)) is not None


def test_running_daemon_sends_the_digest_once(desk):
    desk.write_config(digest={"enabled": True, "send_at": "00:00"})
    desk.once()
    desk.once()
    [digest] = desk.sent(to="admin@imolocale.test")
    assert str(digest["Subject"]).startswith("[maildesk] Digest du ")
    [state] = desk.rows("SELECT value FROM state WHERE key = 'digest_last_sent'")
    assert state["value"] == datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()


# --- logs ---------------------------------------------------------------------------

def test_logs_hold_no_password_and_no_mail_body(dovecot_factory, smtp_sink):
    password = "Pw-7f3kXq-never-logged"
    dovecot = dovecot_factory(users={SUPPORT: password})
    desk = Desk(dovecot, smtp_sink, Path(tempfile.mkdtemp(prefix="maildesk-logs-")))
    env = {"MAILDESK_TEST_PASSWORD": password}
    marker = "BODY-MARKER-5521"
    for fmt, level in (("text", "INFO"), ("json", "DEBUG")):
        write_config(desk.config, config_dict(dovecot.port, smtp_sink.port,
                                              mailbox={"password": None, "password_env": "MAILDESK_TEST_PASSWORD"},
                                              logging={"file": f"{fmt}.log", "format": fmt, "level": level}))
        desk.deliver(mail(subject=f"Colis {fmt}", body=f"Bonjour, {marker}, ma commande n'est pas arrivée."))
        desk.deliver(b"Subject: broken\r\n\r\n" + marker.encode() + b"\r\n")  # quarantined: logged with a reason
        result = desk.once(env=env)
        logged = (desk.dir / f"{fmt}.log").read_text()
        assert "complaint_opened" in logged and "quarantined" in logged and "mail_sent" in logged
        for text in (result.stderr, logged):
            assert password not in text and marker not in text
        if fmt == "json":
            assert all(json.loads(line)["event"] for line in logged.splitlines())
