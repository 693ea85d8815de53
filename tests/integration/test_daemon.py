"""`maildesk run`: the daemon for real, woken by IMAP IDLE, stopped by SIGTERM."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.support import ROOT, mail


@pytest.fixture
def daemon(desk):
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_idle_wakes_the_daemon_and_sigterm_stops_it_cleanly(desk, daemon):
    desk.deliver(mail(sender="first@example.fr"))
    desk.sink.wait_for(2, timeout=60)  # ack + staff notification
    desk.deliver(mail(sender="second@example.fr"))
    desk.sink.wait_for(4, timeout=60)
    assert {str(m["To"]) for m in desk.sent()} >= {"first@example.fr", "second@example.fr"}
    second = desk.cli("once" if desk.pg else "run")  # on PostgreSQL a second `run` stands by (test_standby.py)
    assert second.returncode == 1 and "already running" in second.stderr
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    log = daemon.stderr.read()
    assert "imap_connected" in log and "idle=True" in log and "stopped" in log
    assert desk.folder("INBOX") == 0


def test_the_daemon_rides_out_an_imap_restart(desk, daemon):
    desk.deliver(mail(sender="before@example.fr"))
    desk.sink.wait_for(2, timeout=60)
    desk.dovecot.restart()
    desk.deliver(mail(sender="after@example.fr"))
    desk.sink.wait_for(4, timeout=60)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    assert len(desk.rows("SELECT * FROM complaints")) == 2


def test_polling_without_idle(desk):
    desk.write_config(mailbox={"idle": False, "poll_seconds": 1})
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    try:
        desk.deliver(mail())
        desk.sink.wait_for(2, timeout=60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "idle=False" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_first_digest_after_start_counts_the_mail_that_waited(desk):
    """Issue 12, finding 7: at start the inbox is read before a digest that fell due is built."""
    desk.write_config(digest={"enabled": True, "send_at": "00:00"})
    for i in range(3):
        desk.deliver(mail(sender=f"waiting{i}@example.fr", subject=f"Colis {i}"))
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    try:
        desk.sink.wait_for(7, timeout=60)  # 3 acknowledgements, 3 staff notifications, the digest
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [digest] = desk.sent(to="admin@imolocale.test")
    text = digest.get_body(("plain",)).get_content()
    refs = [r["ref"] for r in desk.rows("SELECT ref FROM complaints")]
    assert len(refs) == 3 and all(ref in text for ref in refs)
