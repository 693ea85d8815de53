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
    second = desk.cli("run")
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
