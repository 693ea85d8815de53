"""PostgreSQL as the store, when it misbehaves: down at start, restarted under load, a schema
newer than the code, a password in the wrong place. Real PostgreSQL, Dovecot and SMTP sink."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from maildesk.store.migrations import SCHEMA_VERSION
from tests.integration.conftest import PG_PASSWORD_ENV, PgReader
from tests.support import ROOT, mail

pytestmark = pytest.mark.pg_always  # on PostgreSQL in every run


@pytest.fixture
def pg_desk(desk, pg_url):
    """The desk with its store on PostgreSQL, whatever MAILDESK_TEST_STORE says."""
    os.environ[PG_PASSWORD_ENV] = pg_url.password
    desk.pg = pg_url
    desk.write_config(storage={"url": pg_url.url, "password_env": PG_PASSWORD_ENV})
    return desk


def _run(desk) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                            cwd=str(ROOT), stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read()


class _Lines:
    """A daemon's stderr read as it comes, so a test can wait for one line without blocking."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc) -> None:
        for line in proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            time.sleep(0.05)  # polling the reader thread, bounded by the deadline
        raise AssertionError(f"no {text!r} within {timeout} s; the daemon said:\n{''.join(self.lines[-20:])}")


def test_unreachable_at_start_is_one_line_and_exit_2_for_once(pg_desk, pg_url):
    pg_url.server.stop()
    try:
        result = pg_desk.cli("once")
    finally:
        pg_url.server.start()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot connect to PostgreSQL at postgresql://maildesk@127.0.0.1" in lines[0]
    assert "Connection refused" in lines[0]
    assert pg_url.password not in result.stderr


def test_a_wrong_password_is_named_in_one_line(pg_desk):
    result = pg_desk.cli("once", env={PG_PASSWORD_ENV: "not-the-password"})
    assert result.returncode == 2
    assert "password authentication failed" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "not-the-password" not in result.stderr


def test_run_waits_for_postgresql_then_answers(pg_desk, pg_url):
    pg_desk.cli("migrate")  # the schema, while the server is up
    pg_url.server.stop()
    pg_desk.deliver(mail(sender="patient@example.fr"))
    proc = _run(pg_desk)
    try:
        lines = _Lines(proc)
        lines.wait_for("database_unreachable")
        assert proc.poll() is None  # waiting, not dead
        pg_url.server.start()
        pg_desk.sink.wait_for(2, timeout=90)  # the ack and the staff notification
    finally:
        _stop(proc)
    assert {str(m["To"]) for m in pg_desk.sent()} >= {"patient@example.fr"}


def test_postgresql_restarted_under_load_loses_nothing_and_sends_nothing_twice(pg_desk, pg_url):
    total = 40
    proc = _run(pg_desk)
    try:
        for i in range(total):
            pg_desk.deliver(mail(sender=f"client{i}@example.fr", subject=f"Commande {i} jamais reçue"))
            if i in (10, 25):
                pg_url.server.restart()  # every connection the daemon holds is cut
        pg_desk.sink.wait_for(2 * total, timeout=240)
    finally:
        log = _stop(proc)
    acks = [m for m in pg_desk.sent() if "client" in str(m["To"])]
    assert sorted(str(m["To"]) for m in acks) == sorted(f"client{i}@example.fr" for i in range(total)), log[-3000:]
    with PgReader(pg_url) as db:
        assert db.execute("SELECT count(*) FROM complaints").fetchone()[0] == total
        assert db.execute("SELECT count(DISTINCT customer_addr) FROM complaints").fetchone()[0] == total
    assert pg_desk.folder("INBOX") == 0


def test_a_schema_newer_than_the_code_is_refused_with_both_numbers(pg_desk, pg_url):
    assert pg_desk.cli("migrate").returncode == 0
    with PgReader(pg_url) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 3),))
    for command in ("once", "migrate"):
        result = pg_desk.cli(command)
        assert result.returncode == 2, (command, result.stderr)
        assert f"schema {SCHEMA_VERSION + 3}, newer than this maildesk knows ({SCHEMA_VERSION})" in result.stderr


def test_the_password_comes_from_a_file_and_never_from_the_url(pg_desk, pg_url, tmp_path):
    secret = tmp_path / "pg-password"
    secret.write_text(pg_url.password + "\n")
    pg_desk.write_config(storage={"url": pg_url.url, "password_env": "", "password_file": str(secret)})
    pg_desk.deliver(mail(sender="filed@example.fr"))
    pg_desk.once()
    assert pg_desk.sent(to="filed@example.fr")
    with_password = pg_url.url.replace("maildesk@", f"maildesk:{pg_url.password}@")
    pg_desk.write_config(storage={"url": with_password, "password_file": ""})
    result = pg_desk.cli("once")
    assert result.returncode == 2
    assert "storage.url holds a password" in result.stderr and pg_url.password not in result.stderr
