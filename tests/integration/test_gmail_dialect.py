"""Gmail's IMAP dialect, reproduced on Dovecot: folders found by special-use
flag under localized names, labels, IDLE renewal, X-GM-THRID, and TLS
certificates that are always verified."""
from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from imapclient.imapclient import ALL, SENT

from maildesk.app import App
from maildesk.adapters.imap import Inbox
from maildesk.adapters.imap_types import ConnectionLost
from tests.outbox_rows import queue_mail
from tests.support import make_config, mail
from tests.tls_proxy import TlsProxy


def inbox_on(server, **mailbox) -> Inbox:
    cfg = make_config(imap_port=server.port, mailbox=mailbox)
    inbox = Inbox(cfg.mailbox, "secret")
    inbox.connect()
    return inbox


# --- special-use folders and labels ------------------------------------------

def test_sent_and_all_mail_are_found_by_flag_under_localized_names(dovecot_factory):
    server = dovecot_factory(special_use={"\\Sent": "Messages envoyés", "\\All": "Tous les messages"})
    inbox = inbox_on(server)
    try:
        assert inbox.find_special(SENT) == "Messages envoyés"
        assert inbox.find_special("\\Sent") == "Messages envoyés"
        assert inbox.find_special(ALL) == "Tous les messages"
        assert inbox.find_special("\\Trash") is None
    finally:
        inbox.close()
    for setting in ("\\Sent", "auto"):
        inbox = inbox_on(server, sent_folder=setting)
        try:
            assert inbox.sent_folder_name() == "Messages envoyés"
        finally:
            inbox.close()


def test_processed_and_quarantine_labels_are_created_once(dovecot):
    for _ in range(2):
        inbox_on(dovecot).close()
    folders = set(dovecot.folders())
    assert {"maildesk/processed", "maildesk/quarantine"} <= folders
    assert not any(f.startswith("[Gmail]") for f in folders)


# --- IDLE --------------------------------------------------------------------

class IdleCounter:
    """Wraps the live client: counts IDLE commands and moves frozen time as IDLE waits."""

    def __init__(self, client, frozen):
        self.client, self.frozen = client, frozen
        self.idles: list[float] = []
        self.dones = 0
        self.real_wait = 0.0  # >0: really wait this long in idle_check (to catch a server push)
        self._idle, self._check, self._done = client.idle, client.idle_check, client.idle_done
        client.idle, client.idle_check, client.idle_done = self.idle, self.idle_check, self.idle_done
        self.on_idle = self.on_done = None

    def idle(self):
        self.idles.append(time.monotonic())
        started = self._idle()
        if self.on_idle:
            self.on_idle(len(self.idles))
        return started

    def idle_check(self, timeout=None):
        responses = self._check(timeout=self.real_wait)
        self.frozen.tick(timeout)
        return responses

    def idle_done(self):
        self.dones += 1
        done = self._done()
        if self.on_done:
            self.on_done(self.dones)
        return done


def test_a_long_wait_reissues_idle_every_idle_renew_seconds(dovecot):
    inbox = inbox_on(dovecot, idle_renew_seconds=540)
    try:
        with freeze_time("2026-11-24 08:00:00") as frozen:
            counter = IdleCounter(inbox.client, frozen)
            assert inbox.wait(25 * 60, lambda: False) is False
        gaps = [b - a for a, b in zip(counter.idles, counter.idles[1:])]
        assert len(counter.idles) == 3 and counter.dones == 3  # at 0, 9 and 18 minutes
        assert all(gap <= 540 for gap in gaps)
        assert inbox.pending() == []  # the connection is healthy after DONE
    finally:
        inbox.close()


def test_mail_arriving_after_a_renewal_ends_the_wait(dovecot):
    inbox = inbox_on(dovecot, idle_renew_seconds=60)
    try:
        with freeze_time("2026-11-24 08:00:00") as frozen:
            counter = IdleCounter(inbox.client, frozen)

            def deliver_on_second_idle(n):
                if n == 2:
                    dovecot.append(mail(subject="pendant IDLE"))
                    counter.real_wait = 1.0  # Dovecot pushes EXISTS ~0.5 s after an APPEND
            counter.on_idle = deliver_on_second_idle
            assert inbox.wait(30 * 60, lambda: False) is True
        assert len(counter.idles) == 2
        assert len(inbox.pending()) == 1
    finally:
        inbox.close()


def test_mail_arriving_between_two_idles_is_not_missed(dovecot):
    inbox = inbox_on(dovecot, idle_renew_seconds=60)
    try:
        with freeze_time("2026-11-24 08:00:00") as frozen:
            counter = IdleCounter(inbox.client, frozen)
            counter.on_done = lambda n: n == 1 and dovecot.append(mail(subject="entre deux IDLE"))
            assert inbox.wait(30 * 60, lambda: False) is True
        assert len(counter.idles) == 1  # found before IDLE was re-issued
        assert len(inbox.pending()) == 1
    finally:
        inbox.close()


def test_mail_announced_before_the_wait_is_not_left_for_the_next_wake_up(dovecot):
    inbox = inbox_on(dovecot, idle_renew_seconds=60)
    try:
        assert inbox.pending() == []
        dovecot.append(mail(subject="pendant l'envoi"))  # while the daemon was busy sending
        inbox.client.noop()  # the server says EXISTS now, with some other answer; IDLE will not repeat it
        with freeze_time("2026-11-24 08:00:00") as frozen:
            counter = IdleCounter(inbox.client, frozen)
            assert inbox.wait(60, lambda: False) is True
        assert counter.idles == []
        assert len(inbox.pending()) == 1
    finally:
        inbox.close()


# --- X-GM-THRID ----------------------------------------------------------------

def test_gmail_thread_id_is_fetched_only_when_the_server_offers_it(dovecot):
    dovecot.append(mail())
    inbox = inbox_on(dovecot)
    try:
        asked: list[list] = []
        real_fetch = inbox.client.fetch

        def gmail_fetch(uids, items, *args, **kwargs):  # what Gmail adds for X-GM-EXT-1 clients
            asked.append(list(items))
            data = real_fetch(uids, [i for i in items if i != "X-GM-THRID"], *args, **kwargs)
            if "X-GM-THRID" in items:
                for uid in data:
                    data[uid][b"X-GM-THRID"] = 1278455344230334865
            return data
        inbox.client.fetch = gmail_fetch
        uids = inbox.pending()
        assert inbox.gmail is False  # Dovecot does not advertise X-GM-EXT-1
        [plain] = inbox.fetch(uids, 10_000_000)
        assert plain.thread_id is None and not any("X-GM-THRID" in items for items in asked)
        inbox.gmail = True
        [fetched] = inbox.fetch(uids, 10_000_000)
        assert fetched.thread_id == 1278455344230334865 and fetched.raw == plain.raw
    finally:
        inbox.close()


# --- TLS: certificates are always verified ---------------------------------------

@pytest.fixture
def certs_dir():
    with tempfile.TemporaryDirectory(prefix="maildesk-tls-") as d:
        yield Path(d)


def test_imap_over_ssl_refuses_a_self_signed_certificate(dovecot, certs_dir, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with TlsProxy(certs_dir, dovecot.port) as proxy:
        cfg = make_config(imap_port=proxy.port, mailbox={"security": "ssl"})
        inbox = Inbox(cfg.mailbox, "secret")
        with pytest.raises(ConnectionLost) as err:
            inbox.connect()
        message = str(err.value)
        assert f"TLS certificate of IMAP server 127.0.0.1:{proxy.port} cannot be verified" in message
        assert "self-signed certificate" in message or "self signed certificate" in message
        assert inbox.client is None
        # control: the same server once its certificate is trusted works, so the certificate was the reason
        monkeypatch.setenv("SSL_CERT_FILE", str(proxy.cert))
        inbox.connect()
        try:
            assert inbox.pending() == []
        finally:
            inbox.close()


def test_smtp_over_ssl_refuses_a_self_signed_certificate_and_keeps_the_mail(smtp_sink, certs_dir, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with TlsProxy(certs_dir, smtp_sink.port) as proxy:
        cfg = make_config(certs_dir, smtp_port=proxy.port, smtp={"security": "ssl", "port": proxy.port})
        app = App(cfg)
        try:
            queue_mail(app)
            now = datetime.now(timezone.utc)
            result = app.outbox.flush(now)
            assert result.retry == 1 and result.sent == 0 and smtp_sink.messages == []
            [row] = app.store.all("SELECT status, last_error FROM outbox")
            assert row["status"] == "queued" and "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
            monkeypatch.setenv("SSL_CERT_FILE", str(proxy.cert))
            app.outbox.retry(now)
            assert app.outbox.flush(now).sent == 1 and len(smtp_sink.messages) == 1
        finally:
            app.close()
