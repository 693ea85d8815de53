"""Several `maildesk run` on one PostgreSQL database and one inbox (issue 19): exactly one active, a
standby takes over from a killed or frozen one, and a daemon that lost the lease commits nothing.

Real PostgreSQL, Dovecot and SMTP sink; the daemons are real processes. Waits poll a condition up to
a deadline; the failover times are measured and printed for the notes, never asserted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest

from maildesk.store.leader import Lease
from maildesk.store.db import Fenced, StoreUnwell
from maildesk.store.postgres import PgStore
from tests.integration.conftest import PG_PASSWORD_ENV
from tests.support import ROOT, mail

TAKEOVER = 3  # seconds: [storage] takeover_seconds in these tests


@pytest.fixture
def pgdesk(desk, request):
    """The desk on PostgreSQL in every run (not only MAILDESK_TEST_STORE=postgresql)."""
    if desk.pg is None:
        desk.pg = request.getfixturevalue("pg_url")
        os.environ[PG_PASSWORD_ENV] = desk.pg.password
    desk.write_config(storage={"url": desk.pg.url, "password_env": PG_PASSWORD_ENV, "takeover_seconds": TAKEOVER})
    return desk


class Daemon:
    """One `maildesk run`, its log in a file (a pipe could fill up and stall it)."""

    def __init__(self, desk, name: str):
        self.log = desk.dir / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "run"],
                                         cwd=str(ROOT), stdout=out, stderr=out, text=True)
        self.pid = self.proc.pid

    def text(self, start: int = 0) -> str:
        return self.log.read_text()[start:]

    def events(self, start: int = 0) -> list[str]:
        return [line.split()[2] for line in self.text(start).splitlines() if len(line.split()) > 2]

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def daemons(pgdesk):
    started: list[Daemon] = []

    def start(name: str) -> Daemon:
        d = Daemon(pgdesk, name)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def wait_until(condition, timeout: float, what: str, every: float = 0.05, log: Daemon | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what}" + (f"; its log:\n{log.text()}" if log else ""))


def the_active(*ds: Daemon) -> Daemon | None:
    active = [d for d in ds if "active" in d.events()]
    return active[0] if len(active) == 1 else None


def status(desk) -> dict:
    result = desk.cli("status", "--json", "--no-connect")
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def acks(desk, customers) -> dict[str, set[str]]:
    """Customer -> the Message-IDs of the acknowledgements they got."""
    got = defaultdict(set)
    for m in desk.sent():
        to = str(m["To"])
        if to in customers:
            got[to].add(str(m["Message-ID"]))
    return got


def note(line: str) -> None:
    """A figure for the closing note (pytest -s shows it); never asserted."""
    print(line)


def test_two_daemons_on_one_database_one_is_active_the_other_stands_by(pgdesk, daemons):
    a, b = daemons("a"), daemons("b")
    active = wait_until(lambda: the_active(a, b), 30, "one daemon active")
    standby = b if active is a else a
    wait_until(lambda: "standby" in standby.events(), 30, "the other standing by", log=standby)
    st = wait_until(lambda: (s := status(pgdesk))["daemon"]["standbys"] and s, 30, "status lists the standby")
    assert st["daemon"]["running"] and st["daemon"]["pid"] == active.pid
    assert [s["pid"] for s in st["daemon"]["standbys"]] == [standby.pid]
    text = pgdesk.cli("status", "--no-connect").stdout
    assert f"pid {active.pid} since" in text and "standby     " in text and f"pid {standby.pid}, last seen" in text
    assert f"active_pid={active.pid}" in standby.text()
    refused = pgdesk.cli("once")
    assert refused.returncode == 1 and f"pid {active.pid}, since" in refused.stderr
    pgdesk.deliver(mail(sender="one@example.fr"))
    pgdesk.sink.wait_for(2, timeout=60)
    assert "received" in active.events() and "received" not in standby.events()
    assert standby.stop() == 0  # SIGTERM on a standby ends it promptly
    assert active.stop() == 0
    assert pgdesk.rows("SELECT count(*) AS n FROM daemons")[0]["n"] == 0  # clean exits take their rows


def test_two_daemons_started_at_the_same_moment_one_becomes_active(pgdesk, daemons):
    a, b = daemons("a"), daemons("b")
    active = wait_until(lambda: the_active(a, b), 30, "one daemon active")
    standby = b if active is a else a
    wait_until(lambda: "standby" in standby.events(), 30, "the other standing by", log=standby)
    assert "active" not in standby.events()
    assert pgdesk.rows("SELECT value FROM meta WHERE key = 'leader_epoch'")[0]["value"] == "1"  # one takeover
    assert [r["pid"] for r in pgdesk.rows("SELECT pid FROM daemons WHERE role = 'active'")] == [active.pid]


def test_the_active_daemon_killed_while_200_complaints_arrive(pgdesk, daemons):
    a = daemons("a")
    wait_until(lambda: "active" in a.events(), 30, "a active")
    b = daemons("b")
    wait_until(lambda: "standby" in b.events(), 30, "b standing by")
    customers = [f"c{i:03d}@example.fr" for i in range(200)]
    delivered = threading.Event()

    def deliver():
        for c in customers:
            pgdesk.deliver(mail(sender=c, subject=f"Colis {c}"))
        delivered.set()

    feeder = threading.Thread(target=deliver)
    feeder.start()
    wait_until(lambda: len(acks(pgdesk, customers)) >= 20, 120, "20 acknowledgements from a")
    a.proc.kill()
    killed = time.monotonic()
    a.proc.wait()  # reaped at once, as systemd does: a zombie's pid would still look alive to the outbox
    before = len(pgdesk.sink.messages)
    took_over = wait_until(lambda: "active" in b.events() and time.monotonic(), 60, "b takes over")
    first_ack = wait_until(lambda: len(pgdesk.sink.messages) > before and time.monotonic(), 60, "b's first mail")
    feeder.join(timeout=120)
    assert delivered.is_set()
    wait_until(lambda: len(acks(pgdesk, customers)) == 200, 300, "every complaint acknowledged", every=0.2)
    got = acks(pgdesk, customers)
    lost = [c for c in customers if not got.get(c)]
    twice = [c for c in customers if len(got.get(c, ())) > 1]
    note(f"kill -9 of the active daemon during 200 complaints (takeover_seconds={TAKEOVER}): "
         f"kill->takeover {took_over - killed:.2f} s, kill->first mail {first_ack - killed:.2f} s, "
         f"lost {len(lost)}, acknowledged twice with different Message-IDs {len(twice)}")
    assert not lost and not twice
    assert pgdesk.rows("SELECT count(*) AS n FROM complaints")[0]["n"] == 200
    after = b.events()[b.events().index("active"):]
    assert "imap_connected" in after and "received" in after  # b's own work, found in its log
    assert b.stop() == 0


def test_a_stale_fence_commits_nothing(pgdesk):
    """A takes the lease, starts a transaction and writes; PostgreSQL ends A's lease session (as its
    idle_session_timeout would); B takes over, ending A's transaction it would otherwise wait for."""
    db, password = pgdesk.pg, pgdesk.pg.password
    store_a, store_b = PgStore(db.url, password, migrate=True), PgStore(db.url, password)
    lease_a, lease_b = Lease(store_a, password, TAKEOVER), Lease(store_b, password, TAKEOVER)
    try:
        assert lease_a.try_acquire() and store_a.fence_epoch == 1
        assert not lease_b.try_acquire()
        with pytest.raises(StoreUnwell):  # its session was ended: the COMMIT cannot happen
            with store_a.transaction():
                store_a.set_state("written_by_a", "in flight")
                with db.server.superuser(db.name) as su:
                    su.execute("SELECT pg_terminate_backend(%s)", (lease_a.conn.info.backend_pid,))
                noticed = lease_a.lost.wait(timeout=10 * TAKEOVER)
                wait_until(lease_b.try_acquire, 10 * TAKEOVER, "b takes over")
        assert noticed and store_b.fence_epoch == 2
        with pytest.raises(Fenced):
            with store_a.transaction():
                store_a.set_state("written_by_a", "after the takeover")
        assert store_b.get_state("written_by_a") is None
    finally:
        for x in (lease_a, lease_b, store_a, store_b):
            x.close()


def test_a_frozen_active_daemon_is_replaced_and_thaws_as_a_standby(pgdesk, daemons):
    a = daemons("a")
    wait_until(lambda: "active" in a.events(), 30, "a active")
    b = daemons("b")
    wait_until(lambda: "standby" in b.events(), 30, "b standing by")
    pgdesk.deliver(mail(sender="before@example.fr"))
    pgdesk.sink.wait_for(2, timeout=60)
    os.kill(a.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    took_over = wait_until(lambda: "active" in b.events() and time.monotonic(), 4 * TAKEOVER, "b takes over")
    note(f"SIGSTOP of the active daemon (takeover_seconds={TAKEOVER}): freeze->takeover {took_over - frozen:.2f} s")
    customers = [f"late{i}@example.fr" for i in range(5)]
    for c in customers:
        pgdesk.deliver(mail(sender=c))
    wait_until(lambda: len(acks(pgdesk, customers)) == 5, 60, "b acknowledges the new complaints")
    thawed_at = len(a.text())
    os.kill(a.pid, signal.SIGCONT)
    wait_until(lambda: "standby" in a.events(thawed_at), 30, "a back as a standby")
    after = a.events(thawed_at)
    assert after.index("lost_active") < after.index("standby")
    assert "received" not in after and "active" not in after
    assert status(pgdesk)["daemon"]["pid"] == b.pid
    got = acks(pgdesk, customers + ["before@example.fr"])
    assert all(len(ids) == 1 for ids in got.values()) and len(got) == 6
    assert pgdesk.rows("SELECT count(*) AS n FROM complaints")[0]["n"] == 6
    assert a.stop() == 0 and b.stop() == 0
