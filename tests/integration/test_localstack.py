"""The local mail stack itself: if these fail, every other integration test is suspect."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import imapclient
import pytest
from imapclient.imapclient import ALL, SENT  # not re-exported by `imapclient` (4.1 __all__)

from maildesk.testing.dovecot import Dovecot
from maildesk.testing.smtp_sink import SmtpSink

SUPPORT = "support@imolocale.test"


def raw_message(subject: str = "Chauffage en panne", to: str = SUPPORT) -> bytes:
    return (
        f"From: Léa Martin <lea@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Message-ID: <m1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Le chauffage ne marche plus.\r\n"
    ).encode()


def email(to: str = SUPPORT, subject: str = "Fuite d'eau") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "lea@example.org"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Il y a une fuite dans la salle de bain.")
    return msg


def send(sink: SmtpSink, msg: EmailMessage):
    return asyncio.run(aiosmtplib.send(msg, hostname=sink.host, port=sink.port, timeout=10))


# -- Dovecot -------------------------------------------------------------------------------------


def test_append_fetch_round_trip(dovecot: Dovecot) -> None:
    raw = raw_message()
    dovecot.append(raw)
    dovecot.append(raw_message("Deuxième"), flags=[imapclient.SEEN])
    assert dovecot.fetch_all() == [raw, raw_message("Deuxième")]
    assert dovecot.count("INBOX") == 2
    with dovecot.client() as c:  # fetch_all peeks: the first message is still unseen
        c.select_folder("INBOX", readonly=True)
        assert len(c.search("UNSEEN")) == 1


def test_capabilities_after_login(dovecot: Dovecot) -> None:
    with dovecot.client() as c:
        for cap in (b"IDLE", b"MOVE", b"SPECIAL-USE", b"UIDPLUS"):
            assert c.has_capability(cap.decode()), cap


def test_restart_keeps_mail_and_port(dovecot: Dovecot) -> None:
    dovecot.append(raw_message())
    port = dovecot.port
    dovecot.restart()
    assert dovecot.is_running and dovecot.port == port
    assert dovecot.fetch_all() == [raw_message()]


def test_kill_then_start_again(dovecot: Dovecot) -> None:
    dovecot.append(raw_message())
    client = dovecot.client()
    dovecot.kill()
    assert not dovecot.is_running
    try:
        with pytest.raises((OSError, imapclient.exceptions.IMAPClientAbortError)):
            client.noop()
    finally:
        client.shutdown()
    dovecot.start()
    assert dovecot.count("INBOX") == 1


def test_idle_wakes_on_append_from_another_client(dovecot: Dovecot) -> None:
    with dovecot.client() as watcher:
        assert watcher.has_capability("IDLE")
        watcher.select_folder("INBOX")
        watcher.idle()
        dovecot.append(raw_message())  # a second connection
        responses = watcher.idle_check(timeout=5)
        watcher.idle_done()
    assert (1, b"EXISTS") in responses  # within idle_check's bound; Dovecot's notify delay is ~0.5 s


def test_special_use_folders_with_localized_names(dovecot_factory) -> None:
    dovecot = dovecot_factory(special_use={"\\Sent": "Messages envoy&AOk-s", "\\All": "Tous les messages"})
    with dovecot.client() as c:
        assert c.find_special_folder(SENT) == "Messages envoyés"
        assert c.find_special_folder(ALL) == "Tous les messages"
        flags = {name: fl for fl, _sep, name in c.list_folders()}
        assert SENT in flags["Messages envoyés"]
        c.append("Messages envoyés", raw_message())
    assert dovecot.count("Messages envoyés") == 1
    assert set(dovecot.folders()) == {"INBOX", "Messages envoyés", "Tous les messages"}


def test_default_sent_folder(dovecot: Dovecot) -> None:
    with dovecot.client() as c:
        assert c.find_special_folder(SENT) == "Sent"


def test_start_failure_reports_log_tail(dovecot_binary: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="maildesk-dovecot-"))
    root.chmod(0o755)
    try:
        dovecot = Dovecot(root)
        with socket.socket() as blocker:  # someone else holds the port
            blocker.bind((dovecot.host, dovecot.port))
            blocker.listen()
            with pytest.raises(RuntimeError, match="(?s)dovecot.*Address already in use"):
                dovecot.start()
        assert not dovecot.is_running
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- SMTP sink -----------------------------------------------------------------------------------


def test_sink_captures_message(smtp_sink: SmtpSink) -> None:
    send(smtp_sink, email())
    (captured,) = smtp_sink.wait_for(1, timeout=5)
    assert captured.mail_from == "lea@example.org"
    assert captured.rcpt_tos == [SUPPORT]
    assert b"Subject: Fuite d'eau" in captured.data
    assert captured.received_at > 0


def test_wait_for_times_out(smtp_sink: SmtpSink) -> None:
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.05)


def test_fail_next_then_accept(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(2)
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPResponseException) as err:
            send(smtp_sink, email())
        assert isinstance(err.value, aiosmtplib.SMTPDataError)
        assert err.value.code == 451
    send(smtp_sink, email())
    assert len(smtp_sink.wait_for(1)) == 1


def test_refuse_all_and_accept_all(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_all(554)
    with pytest.raises(aiosmtplib.SMTPDataError) as err:
        send(smtp_sink, email())
    assert err.value.code == 554
    smtp_sink.accept_all()
    send(smtp_sink, email())
    assert len(smtp_sink.messages) == 1


def test_spool_dir(tmp_path: Path) -> None:
    with SmtpSink(spool_dir=tmp_path / "spool") as sink:
        send(sink, email())
        sink.wait_for(1)
    (eml,) = (tmp_path / "spool").glob("*.eml")
    assert b"Fuite d'eau" in eml.read_bytes()


def test_delivery_into_dovecot_inbox(dovecot: Dovecot) -> None:
    with SmtpSink(deliver_to=dovecot, local_addresses={SUPPORT, "help@imolocale.test"}) as sink:
        send(sink, email(to=SUPPORT, subject="Direct"))
        send(sink, email(to="help@imolocale.test", subject="Alias"))
        send(sink, email(to="someone@elsewhere.test", subject="Relayed"))
        sink.wait_for(3)
    inbox = dovecot.fetch_all()
    assert len(inbox) == 2
    assert inbox[0].startswith(b"Return-Path: <lea@example.org>\r\n")
    assert b"Subject: Direct" in inbox[0] and b"Subject: Alias" in inbox[1]


def test_delivery_failure_is_a_temporary_error(dovecot: Dovecot) -> None:
    with SmtpSink(deliver_to=dovecot) as sink:
        dovecot.stop()
        with pytest.raises(aiosmtplib.SMTPDataError) as err:
            send(sink, email())
        assert err.value.code == 451
        assert sink.messages == []
