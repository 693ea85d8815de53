"""Issue 13 on the local stack: what Gmail does on the first day, played by Dovecot
(and a small relay that answers NO as Gmail does for a message it cannot serve)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

from maildesk.store.db import Store
from tests.imap_proxy import RefusingImapProxy
from tests.support import ROOT, mail


@pytest.fixture
def refusing(desk):
    """Mail goes through a relay that refuses to FETCH the body of UID 2 (set later)."""
    proxy = RefusingImapProxy(desk.dovecot.port)
    desk.write_config(mailbox={"port": proxy.port})
    yield proxy
    proxy.close()


def _three(desk):
    for who in ("first", "second", "third"):
        desk.deliver(mail(sender=f"{who}@example.fr", subject=f"Colis de {who}"))


def test_a_message_the_server_will_not_serve_is_skipped_after_three_tries(desk, refusing):
    _three(desk)
    refusing.refuse_uids = {2}
    desk.once()
    customers = {r["customer_addr"] for r in desk.rows("SELECT customer_addr FROM complaints")}
    assert customers == {"first@example.fr", "third@example.fr"}  # the others are not held up
    assert desk.folder("INBOX") == 1
    desk.once()
    assert not [m for m in desk.sent() if "admin@" in str(m["To"])]
    desk.once()  # the third refusal: left alone, admins told with the subject Gmail's ENVELOPE gives
    alerts = [m for m in desk.sent() if "admin@imolocale.test" in str(m["To"])]
    assert len(alerts) == 1 and "UID 2" in str(alerts[0]["Subject"])
    assert "Colis de second" in alerts[0].get_body().get_content()
    tries = refusing.refusals
    desk.once()
    assert refusing.refusals == tries  # not asked for again
    assert refusing.logins == 4  # one login per `once`, never one per refusal
    assert desk.folder("INBOX") == 1  # left where it is
    doc = json.loads(desk.cli("status", "--json", "--no-connect").stdout)
    assert [u["uid"] for u in doc["unfetchable"]] == [2] and doc["imap_logins"]["total"] == 4


def test_the_daemon_logs_in_once_while_a_message_is_refused(desk, refusing):
    """Before: every NO dropped the connection and the back-off went back to 1 s after each
    login, about one login a second for as long as the message stayed."""
    _three(desk)
    refusing.refuse_uids = {2}
    desk.write_config(mailbox={"idle": False, "poll_seconds": 1})
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    try:
        # two acknowledgements, two staff notes, then the admins' alert after the third pass
        desk.sink.wait_for(5, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert refusing.refusals >= 3 and refusing.logins == 1
    assert any("admin@" in str(m["To"]) for m in desk.sent())


def test_a_folder_that_cannot_be_selected_stops_with_one_line(desk):
    desk.write_config(mailbox={"sent_folder": "[Gmail]/Sent Mail"})
    result = desk.cli("once")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'[Gmail]/Sent Mail'" in result.stderr and "'Sent'" in result.stderr and "sent_folder" in result.stderr
    desk.write_config(mailbox={"sent_folder": None, "folder": "Boîte"})
    result = desk.cli("run")
    assert result.returncode == 2 and "'Boîte'" in result.stderr and "'INBOX'" in result.stderr


class _Clock(threading.Event):
    """The loop's pauses, recorded instead of waited; stops the loop after `passes` pauses."""

    def __init__(self, passes: int):
        super().__init__()
        self.pauses: list[float] = []
        self.passes = passes

    def wait(self, timeout=None):
        self.pauses.append(timeout)
        if len(self.pauses) >= self.passes:
            self.set()
        return self.is_set()


def test_the_loop_backs_off_after_an_unexpected_error_and_tells_the_admins(desk):
    from maildesk.daemon import Daemon
    desk.write_config(mailbox={"idle": False, "poll_seconds": 1})
    app = desk.app()
    broken = {"on": True}
    real_flush = app.outbox.flush

    def flush(now, stopping=None):  # a bug in one part of the pass, as TemplateNotFound was
        if broken["on"]:
            raise RuntimeError("fr/ack.txt not found")
        real_flush(now, stopping=stopping)
        daemon.stop_event.set()  # one whole pass is enough to see

    app.outbox.flush = flush
    daemon = Daemon(app)
    daemon.stop_event = _Clock(passes=12)
    assert daemon.run() == 0
    assert daemon.stop_event.pauses[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    trouble = json.loads(app.store.get_state("loop_trouble"))
    assert "fr/ack.txt" in trouble["error"]
    alerts = desk.rows("SELECT * FROM outbox WHERE kind = 'loop_failing'")
    assert len(alerts) == 1  # once, not once a pass; it waits in the outbox while mail is broken
    status = desk.cli("status", "--no-connect")
    # the daemon has stopped by now ("down", 2); the failing loop it recorded is still told
    assert status.returncode == 2 and "keeps failing" in status.stdout, status.stdout
    broken["on"] = False  # fixed: one whole pass resets the back-off and clears the trouble
    daemon.stop_event = _Clock(passes=3)
    assert daemon.run() == 0 and daemon.stop_event.pauses == []
    assert app.store.get_state("loop_trouble") == ""
    assert any("admin@imolocale.test" in str(m["To"]) for m in desk.sent())
    app.close()


# --- a safe first start (item 7) ----------------------------------------------------

def _old_mail(desk, n: int, age, who: str = "old") -> None:
    from datetime import datetime, timezone
    with desk.dovecot.client() as c:
        for i in range(n):
            c.append("INBOX", mail(sender=f"{who}{i}@example.fr", subject=f"Ancienne {i}"),
                     msg_time=datetime.now(timezone.utc) - age)


def test_the_first_start_leaves_old_mail_untouched_and_answers_the_recent(desk):
    from datetime import timedelta
    desk.write_config(mailbox={"first_start_hours": 24})
    _old_mail(desk, 300, timedelta(days=30))
    desk.deliver(mail(sender="recent@example.fr"))
    result = desk.once()
    assert [r["customer_addr"] for r in desk.rows("SELECT customer_addr FROM complaints")] == ["recent@example.fr"]
    assert {str(m["To"]) for m in desk.sent() if "imolocale" not in str(m["To"])} == {"recent@example.fr"}
    assert "left=300" in result.stderr and "backfill --since" in result.stderr
    with desk.dovecot.client() as c:  # not moved, not marked seen
        c.select_folder("INBOX", readonly=True)
        flags = c.get_flags(c.search("ALL"))
    assert len(flags) == 300 and not any(b"\\Seen" in f for f in flags.values())
    assert "300 older message(s) left" in desk.cli("status", "--no-connect").stdout


def test_a_later_start_after_a_day_of_downtime_answers_everything_that_waited(desk):
    from datetime import timedelta
    desk.write_config(mailbox={"first_start_hours": 24})
    _old_mail(desk, 3, timedelta(days=30))
    desk.once()  # the first start: the three are left
    _old_mail(desk, 2, timedelta(days=1, hours=2), who="late")  # came while maildesk was down for a day
    desk.once()
    got = {r["customer_addr"] for r in desk.rows("SELECT customer_addr FROM complaints")}
    assert got == {"late0@example.fr", "late1@example.fr"} and desk.folder("INBOX") == 3


# --- staff trust in `check` (item 2) --------------------------------------------------

def test_check_says_what_a_workspace_domain_without_dkim_lacks(desk):
    from tests.unit.test_staff_trust import WORKSPACE_NO_DKIM
    desk.write_config(security={"require_authenticated_staff": True},
                      teams={"customer_service": ["julie@imolocale.fr"]})
    eml = desk.dir / "staff.eml"
    eml.write_bytes(mail(sender="julie@imolocale.fr", name="Julie",
                         headers={"Authentication-Results": WORKSPACE_NO_DKIM.replace("\r\n", "")}))
    result = desk.cli("check", "--staff-mail", str(eml))
    assert result.returncode == 1
    assert "staff mail from julie@imolocale.fr: REFUSED" in result.stdout
    assert "Start authentication" in result.stdout and "_dmarc.imolocale.fr" in result.stdout
    desk.write_config(security={"staff_trust": "dkim"})
    result = desk.cli("check", "--staff-mail", str(eml))
    assert 'weaker trust chosen: staff_trust = "dkim"' in result.stdout and "julie@imolocale.fr: trusted" in result.stdout


# --- Gmail's spam folder (item 1) -----------------------------------------------------

GMAIL_DMARC = ("mx.google.com; dkim=pass header.i=@example.fr header.s=s1 header.b=YWJj; spf=pass (google.com: "
               "domain of camille@example.fr designates 192.0.2.1 as permitted sender) smtp.mailfrom=camille@example.fr; "
               "dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.fr")


def test_a_complaint_gmail_filed_as_spam_is_rescued_and_an_unrelated_spam_only_listed(desk):
    desk.deliver(mail(sender="camille@example.fr", subject="Colis jamais reçu"))
    desk.once()
    ref = desk.rows("SELECT ref FROM complaints")[0]["ref"]
    ack = next(m for m in desk.sent() if str(m["To"]) == "camille@example.fr")
    desk.sink.clear()
    # her answer, and a new mail of hers, land in spam; so does a stranger's offer
    desk.deliver(mail(sender="camille@example.fr", subject=f"Re: [{ref}] Colis jamais reçu",
                      in_reply_to=ack["Message-ID"], body="Voici la photo du colis."), folder="Junk")
    desk.deliver(mail(sender="camille@example.fr", subject="Autre commande", body="Une autre commande manque.",
                      headers={"Authentication-Results": GMAIL_DMARC}), folder="Junk")
    desk.deliver(mail(sender="offers@spam.example", subject="Gagnez un iPhone", body="Cliquez ici"), folder="Junk")
    result = desk.once()
    assert "spam_rescued" in result.stderr
    assert desk.folder("Junk") == 1 and desk.folder("INBOX") == 0
    opened = {r["subject"] for r in desk.rows("SELECT subject FROM complaints")}
    assert "Autre commande" in opened and "Gagnez un iPhone" not in opened
    kinds = [r["kind"] for r in desk.rows("SELECT m.kind FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                                          "WHERE c.ref = ? AND m.direction = 'in'", ref)]
    assert len(kinds) == 2  # her answer joined her complaint
    assert not [m for m in desk.sent() if "spam.example" in str(m["To"])]  # nothing answered from spam
    listed = desk.cli("spam", "list").stdout
    assert "offers@spam.example" in listed and "Gagnez un iPhone" in listed and "1 message(s) in Junk" in listed
    text = desk.cli("digest", "--print").stdout
    assert "SPAM : 1 message dans Junk" in text and "offers@spam.example" in text


def test_an_admin_rescues_one_spam_and_it_is_answered(desk):
    desk.deliver(mail(sender="nouveau@example.fr", subject="Ma commande", body="Bonjour"), folder="Junk")
    desk.once()
    assert not desk.sent() and desk.folder("Junk") == 1
    uid = json.loads(desk.cli("spam", "list", "--json").stdout)["listed"][0]["uid"]
    result = desk.cli("spam", "rescue", str(uid))
    assert result.returncode == 0, result.stderr
    desk.once()
    assert any(str(m["To"]) == "nouveau@example.fr" for m in desk.sent())
    assert desk.cli("spam", "rescue", "999").returncode == 1


# --- OAuth2 as documented (item 6) ----------------------------------------------------

def test_oauth2_on_the_shipped_config_needs_no_password_and_a_dead_token_is_heard(desk):
    from tests.integration.test_oauth2 import ENV, oauth_section
    from tests.oauth_stub import TokenServer
    with TokenServer() as tokens:
        # the README's way: [oauth2] added, the shipped password_env keys left in place and unset
        desk.write_config(mailbox={"password": None, "password_env": "MAILDESK_IMAP_PASSWORD"},
                          smtp={"password_env": "MAILDESK_SMTP_PASSWORD"}, oauth2=oauth_section(tokens))
        env = {"MAILDESK_IMAP_PASSWORD": "", "MAILDESK_SMTP_PASSWORD": "", **ENV}
        Store(desk.dir / "maildesk.db").close()  # the database the daemon would have made
        status = desk.cli("status", "--no-connect", env=env)
        # no daemon runs in this test: "down" (2), and nothing about a password
        assert status.returncode == 2 and "config error" not in status.stderr, status.stdout + status.stderr
        tokens.revoke()  # a password change, a revocation, the 7-day expiry of an app in Testing
        result = desk.cli("once", env=env)
        assert result.returncode == 1 and "config error" not in result.stderr
        marker = desk.dir / "oauth2-token-dead"
        assert marker.exists() and "maildesk auth gmail" in marker.read_text()
        status = desk.cli("status", "--no-connect", env=env)
        assert status.returncode != 0 and "Gmail refused the OAuth2 refresh token" in status.stdout


# --- Sent read incrementally (item 5) -------------------------------------------------

def test_the_sent_folder_is_read_by_uid_after_the_last_one_seen(desk, refusing):
    desk.write_config(mailbox={"sent_folder": "auto"})
    with desk.dovecot.client() as c:
        for i in range(40):
            c.append("Sent", mail(sender="support@imolocale.test", to=f"c{i}@example.fr", subject=f"Ancien {i}"))
    desk.once()  # the first look: nothing of the past is replayed, and no SEARCH ALL of a year of Sent
    desk.deliver(mail(sender="support@imolocale.test", to="new@example.fr", subject="Réponse",
                      message_id="<web@imolocale.test>"), folder="Sent")
    refusing.commands.clear()
    desk.once()
    desk.once()
    searches = [c for c in refusing.commands if b"SEARCH" in c.upper()]
    # per pass: SEARCH ALL of the inbox and of spam (both small), and Sent only above the last UID seen
    assert searches.count(b"UID SEARCH ALL") == 4
    assert [c for c in searches if c != b"UID SEARCH ALL"] == [b"UID SEARCH UID 41:*", b"UID SEARCH UID 42:*"]
    fetches = [c for c in refusing.commands if b"FETCH" in c.upper() and b"BODY.PEEK[]" in c.upper()]
    assert len(fetches) == 1 and b"41" in fetches[0]  # the new one, once


# --- check understands "auto" (item 8) ------------------------------------------------

def test_check_finds_the_sent_and_spam_folders_set_to_auto(desk):
    desk.write_config(mailbox={"sent_folder": "auto"})
    result = desk.cli("check")
    assert result.returncode == 0, result.stdout
    assert 'Sent (sent_folder = "auto", found by its \\Sent flag)' in result.stdout
    assert 'Junk (junk_folder = "auto", found by its \\Junk flag)' in result.stdout


def test_the_hourly_end_of_a_gmail_session_is_not_a_warning(desk, refusing):
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    try:
        desk.deliver(mail(sender="first@example.fr"))
        desk.sink.wait_for(2, timeout=60)
        refusing.end_sessions()
        desk.deliver(mail(sender="second@example.fr"))
        desk.sink.wait_for(4, timeout=60)  # back after the routine reconnect
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stderr.read().splitlines()
    ended = [line for line in log if "imap_unavailable" in line]
    assert ended and all(" INFO " in line for line in ended), ended
    assert refusing.logins == 2


def test_backfill_loads_what_the_first_start_left_as_history_and_sends_nothing(desk):
    from datetime import datetime, timedelta, timezone
    desk.write_config(mailbox={"first_start_hours": 24})
    _old_mail(desk, 2, timedelta(days=300), who="ancient")
    _old_mail(desk, 3, timedelta(days=20))
    desk.once()
    assert desk.rows("SELECT * FROM complaints") == [] and desk.sent() == []
    since = (datetime.now(timezone.utc) - timedelta(days=60)).date().isoformat()
    result = desk.cli("backfill", "--since", since)
    assert result.returncode == 0, result.stderr
    assert "3 message(s) read: 3 complaint(s) created" in result.stdout
    assert {r["customer_addr"] for r in desk.rows("SELECT customer_addr FROM complaints")} == {
        "old0@example.fr", "old1@example.fr", "old2@example.fr"}
    assert desk.sent() == [] and desk.folder("INBOX") == 5
    assert desk.rows("SELECT * FROM complaints WHERE next_due IS NOT NULL") == []  # no clock on history
    desk.once()
    assert desk.sent() == []
    assert desk.cli("backfill", "--since", "last week").returncode == 2
