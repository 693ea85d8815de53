"""Faults on real servers: IMAP gone mid-batch, SMTP refusing or away for a day, the process
killed at every step of a batch, the database locked, corrupt or full.

After each: every message that arrived is stored exactly once or quarantined, every
acknowledgement went out exactly once (counted by the captured Message-IDs), and maildesk
recovers by itself. The one place a copy can go out twice is a kill between the SMTP server's
"250 accepted" and the row being marked sent; the copy then carries the same Message-ID, and
is counted apart as a duplicate at that window. Each test prints a summary line:

    faults[<case>] in=.. stored=.. quarantined=.. acks=.. sent=.. duplicates=.. lost=..
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest

from maildesk.testing import faults
from maildesk.daemon import Daemon
from maildesk.adapters.imap_types import MailboxError
from maildesk.testing.dovecot import Dovecot
from maildesk.testing.smtp_sink import SmtpSink
from tests.integration.conftest import Desk
from tests.integration.test_clock import once_at
from tests.support import mail

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


# --- the ledger -------------------------------------------------------------------------------

class Ledger:
    """What went into the inbox, to account for it afterwards."""

    def __init__(self, desk: Desk):
        self.desk = desk
        self.copies: list[bytes] = []  # every APPEND, repeats included

    def deliver(self, raw: bytes, msg_time=None) -> None:
        self.copies.append(raw)
        self.desk.deliver(raw, msg_time=msg_time)

    def complaints(self, n: int, prefix: str = "c", msg_time=None) -> None:
        for i in range(n):
            self.deliver(mail(sender=f"{prefix}{i}@example.fr", name=f"Client {i}",
                              message_id=f"<{prefix}{i}@example.fr>"), msg_time=msg_time)

    def account(self, case: str) -> dict:
        """Counts, printed as one line; `lost` must be 0 and every sent copy unique but for the window."""
        desk = self.desk
        distinct = list(dict.fromkeys(self.copies))
        stored_ids = Counter(r["message_id"] for r in desk.rows("SELECT message_id FROM messages WHERE direction = 'in'"))
        processed = {r["message_id"] for r in desk.rows("SELECT message_id FROM processed")}
        held = {r["sha256"] for r in desk.rows("SELECT sha256 FROM quarantine")}
        stored = quarantined = lost = 0
        for raw in distinct:
            mid = message_from_bytes(raw)["Message-ID"]
            if mid and stored_ids.get(mid.strip()) == 1 and mid.strip() in processed:
                stored += 1
            elif hashlib.sha256(raw).hexdigest() in held:
                quarantined += 1
            else:
                lost += 1
        assert all(n == 1 for n in stored_ids.values())
        captured = Counter(message_id(c.data) for c in desk.sink.messages)
        outbox = desk.rows("SELECT message_id, kind, status FROM outbox")
        acks = [r for r in outbox if r["kind"] == "ack"]
        unsent = [r for r in outbox if r["status"] != "sent"]
        lost += sum(1 for r in outbox if r["status"] == "sent" and not captured[r["message_id"]])
        summary = {
            "in": len(distinct), "stored": stored, "quarantined": quarantined,
            "acks": sum(1 for r in acks if captured[r["message_id"]]),
            "sent": len(captured), "duplicates": sum(n - 1 for n in captured.values()),
            "unsent": len(unsent), "lost": lost,
        }
        print(f"faults[{case}] " + " ".join(f"{k}={v}" for k, v in summary.items()))
        return summary

    def settled(self, summary: dict, duplicates: int = 0) -> None:
        """The state every fault must end in once maildesk has recovered."""
        assert summary["lost"] == 0
        assert summary["stored"] + summary["quarantined"] == summary["in"]
        assert summary["unsent"] == 0
        assert summary["duplicates"] == duplicates
        assert self.desk.folder("INBOX") == 0
        assert (self.desk.folder("maildesk/processed") + self.desk.folder("maildesk/quarantine")
                == len(self.copies))
        complaints = self.desk.rows("SELECT count(*) n FROM complaints")[0]["n"]
        assert summary["acks"] == complaints  # one acknowledgement per complaint (no flood here)


def message_id(raw: bytes) -> str:
    """The Message-ID header unfolded (long ones are folded onto two lines)."""
    return "".join(str(message_from_bytes(raw)["Message-ID"]).split())


def future_mail(desk: Desk) -> None:
    """Make every waiting retry due now (instead of moving the clock)."""
    with desk.db() as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE status = 'queued'")


@pytest.fixture
def ledger(desk) -> Ledger:
    desk.write_config(digest={"enabled": False})  # a daily digest would add a mail depending on the hour
    return Ledger(desk)


# --- IMAP ------------------------------------------------------------------------------------

@pytest.mark.parametrize("point, nth, how", [
    ("after_message", 110, "restart"),        # mid-chunk: bodies in hand, the commit goes, the MOVE fails
    ("after_move_quarantine", 1, "kill"),     # between chunks: the next FETCH fails inside the transaction
    ("after_commit", 2, "restart"),           # committed, not moved: seen again, known by Message-ID
])
def test_imap_server_lost_mid_batch(desk, ledger, monkeypatch, point, nth, how):
    ledger.complaints(120)
    ledger.deliver(b"not an e-mail at all\r\n")
    seen = Counter()

    def step(name):
        seen[name] += 1
        if name == point and seen[name] == nth:
            desk.dovecot.restart() if how == "restart" else desk.dovecot.kill()

    monkeypatch.setattr(faults, "step", step)
    with pytest.raises(MailboxError):
        desk.run_once()
    monkeypatch.undo()
    if how == "kill":
        with pytest.raises(MailboxError):  # the server is still down: the next run fails cleanly too
            desk.run_once()
        desk.dovecot.start()
    desk.once()  # the real command, as cron would run it next
    summary = ledger.account(f"imap-{how}-{point}#{nth}")
    ledger.settled(summary)
    assert summary["stored"] == 120 and summary["quarantined"] == 1


# --- SMTP ------------------------------------------------------------------------------------

def test_smtp_temporary_refusals_are_retried_and_sent_once(desk, ledger):
    ledger.complaints(6)
    desk.sink.fail_next(5, code=451)
    desk.once()
    queued = desk.rows("SELECT attempts, last_error FROM outbox WHERE status = 'queued'")
    assert len(queued) == 5 and all("451" in r["last_error"] for r in queued)
    desk.once()  # not due yet: nothing more goes out, nothing is dropped
    assert len(desk.rows("SELECT 1 FROM outbox WHERE status = 'queued'")) == 5
    future_mail(desk)
    desk.once()
    ledger.settled(ledger.account("smtp-451"))


def test_smtp_421_mid_flush_leaves_the_rest_for_the_next_run(desk, ledger):
    ledger.complaints(4)
    desk.sink.fail_next(1, code=421, message="4.7.0 too busy, closing")
    desk.once()
    rows = desk.rows("SELECT status, attempts FROM outbox ORDER BY id")
    assert rows[0]["attempts"] == 1 and all(r["status"] == "queued" for r in rows)
    assert all(r["attempts"] == 0 for r in rows[1:])  # never tried on the closed connection
    desk.once()  # the untried ones go now; the refused one waits for its back-off
    future_mail(desk)
    desk.once()
    ledger.settled(ledger.account("smtp-421"))


def test_smtp_permanent_refusal_fails_visibly_and_a_retry_sends_once(desk, ledger):
    ledger.complaints(3)
    desk.sink.refuse_all(550)
    desk.once()
    assert {r["status"] for r in desk.rows("SELECT status FROM outbox")} == {"failed"}
    assert len(desk.rows("SELECT 1 FROM events WHERE kind = 'send_failed'")) == 6
    assert desk.sink.messages == []
    desk.sink.accept_all()
    desk.once()
    assert desk.sink.messages == []  # failed mail is not retried behind the admins' back
    app = desk.app()
    try:
        assert app.outbox.retry(datetime.now(timezone.utc)) == 6
    finally:
        app.close()
    desk.once()
    ledger.settled(ledger.account("smtp-550-then-retry"))


def test_smtp_unreachable_for_a_day(desk, ledger):
    """The sink is down from T0 for 24 hours of frozen time; maildesk keeps everything queued,
    backs off (at most an hour apart), and sends each mail exactly once when it is back."""
    desk.sink.stop()
    ledger.complaints(5, msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=1))
    assert len(desk.rows("SELECT 1 FROM complaints")) == 5
    attempts_seen = []
    for minutes in range(10, 24 * 60, 50):
        once_at(desk, T0 + timedelta(minutes=minutes))
        rows = desk.rows("SELECT status, attempts FROM outbox")
        assert {r["status"] for r in rows} == {"queued"}
        attempts_seen.append(max(r["attempts"] for r in rows))
    assert attempts_seen == sorted(attempts_seen) and attempts_seen[-1] >= 10  # tried all day, backing off
    assert attempts_seen[-1] < len(attempts_seen) + 1  # never more than once a run
    desk.sink.start()
    once_at(desk, T0 + timedelta(hours=24, minutes=30))
    summary = ledger.account("smtp-down-24h")
    ledger.settled(summary)
    kinds = Counter(r["kind"] for r in desk.rows("SELECT kind FROM outbox"))
    assert kinds["ack"] == 5 and kinds["escalation"] >= 5  # the 24 h escalation happened meanwhile


# --- SIGKILL at every step of a batch ---------------------------------------------------------

def kill_batch(ledger: Ledger) -> None:
    """3 complaints, one unparseable message, one complaint delivered twice: 25 fault points
    (5 messages x 2, 3 after the commit, 6 mails x 2)."""
    ledger.complaints(3, prefix="k")
    ledger.deliver(b"this is not an e-mail at all\r\n")
    ledger.deliver(ledger.copies[0])


def killed_once_then_clean(n: int, dovecot: Dovecot, sink: SmtpSink | None) -> tuple[str | None, dict]:
    """One case: `maildesk once` killed at fault point n, then a clean `maildesk once`.
    Returns the point's name (None if the run ended before reaching it) and the counts.
    With no sink given, the case runs against a Gmail-like server: it files every mail it
    accepts in the mailbox's Sent folder, and maildesk is told so (`saves_to_sent`)."""
    if sink is None:
        with SmtpSink(files_sent=dovecot) as gmail_like:
            return killed_once_then_clean(n, dovecot, gmail_like)
    sink.clear()
    desk = Desk(dovecot, sink, Path(tempfile.mkdtemp(prefix="maildesk-kill-")))
    desk.write_config(digest={"enabled": False},
                      smtp={"saves_to_sent": "yes" if sink.files_sent is not None else None})
    ledger = Ledger(desk)
    kill_batch(ledger)
    trace = desk.dir / "kill.trace"
    try:
        killed = desk.cli("once", env={"MAILDESK_KILL_AT": str(n), "MAILDESK_KILL_TRACE": str(trace)})
        if killed.returncode == 0:
            assert not trace.exists()
            summary = ledger.account(f"kill-none#{n}")
            ledger.settled(summary)
            return None, summary
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        point = trace.read_text().split()[1]
        desk.once()
        summary = ledger.account(f"kill#{n}@{point}" + ("-sent-folder" if sink.files_sent else ""))
        window = point == "after_send_before_mark" and sink.files_sent is None
        ledger.settled(summary, duplicates=1 if window else 0)
        if sink.files_sent is not None:  # Gmail's record: one copy of each mail in Sent, none twice
            filed = Counter(message_id(raw) for raw in dovecot.fetch_all("Sent"))
            assert set(filed.values()) <= {1} and sum(filed.values()) == summary["sent"]
        return point, summary
    finally:
        dovecot.kill()
        shutil.rmtree(desk.dir, ignore_errors=True)


def every_kill_point(dovecot_factory, sinks: list) -> tuple[list, Counter, Counter]:
    """`maildesk once` with MAILDESK_KILL_AT=N (SIGKILL at the N-th fault point), then a clean
    `maildesk once`, for every N until a run goes through unkilled; two cases at a time."""
    results = []
    with ThreadPoolExecutor(2) as pool:
        for first in range(1, 61, 2):
            cases = [(n, pool.submit(killed_once_then_clean, n, dovecot_factory(), sinks[i]))
                     for i, n in enumerate((first, first + 1))]
            outcomes = [(n, *future.result()) for n, future in cases]
            results += [o for o in outcomes if o[1] is not None]
            if any(o[1] is None for o in outcomes):
                break
        else:
            pytest.fail("every run was killed: more fault points than expected")
    points = Counter(p for _, p, _ in results)
    totals = Counter()
    for _, _, s in results:
        totals.update(s)
    print(f"faults[sigkill x{len(results)}{'' if sinks[0] else ' sent-folder'}] points={dict(points)} " +
          " ".join(f"{k}={v}" for k, v in totals.items()))
    assert len(results) >= 20 and [n for n, _, _ in results] == list(range(1, len(results) + 1))
    assert set(points) >= {"before_message", "after_message", "after_commit", "after_move_processed",
                           "after_move_quarantine", "before_send", "after_send_before_mark"}
    return results, points, totals


def test_sigkill_at_every_step_then_a_clean_run(dovecot_factory, smtp_sink):
    with SmtpSink() as second_sink:
        _, points, totals = every_kill_point(dovecot_factory, [smtp_sink, second_sink])
    assert totals["duplicates"] == points["after_send_before_mark"] and totals["lost"] == 0


def test_sigkill_at_every_step_with_a_server_that_files_sent_mail_sends_nothing_twice(dovecot_factory):
    """As above against a Gmail-like server (it files what it accepts in Sent): the mail in flight
    when the process died is found there by its Message-ID and marked sent, not sent again."""
    _, points, totals = every_kill_point(dovecot_factory, [None, None])
    assert points["after_send_before_mark"] >= 1
    assert totals["duplicates"] == 0 and totals["lost"] == 0 and totals["unsent"] == 0


# --- the database ----------------------------------------------------------------------------

class EventWatch(logging.Handler):
    """Sets a threading.Event when maildesk logs a given event."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.events: dict[str, threading.Event] = {}

    def on(self, name: str) -> threading.Event:
        return self.events.setdefault(name, threading.Event())

    def emit(self, record):
        self.on(getattr(record, "event", "") or "").set()


@pytest.fixture
def watch():
    logger = logging.getLogger("maildesk")
    handler, level = EventWatch(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def hold_exclusive(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


@pytest.mark.sqlite_only  # an SQLite file locked by another writer
def test_locked_database_fails_the_run_cleanly_and_quarantines_nothing(desk, ledger):
    ledger.complaints(3)
    desk.once()  # creates the database; the first three go through
    ledger.complaints(3, prefix="d")
    lock = hold_exclusive(desk.dir / "maildesk.db")
    try:
        app = desk.app()
        app.store.conn.execute("PRAGMA busy_timeout = 200")  # instead of 30 s
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            desk.run_once(app)
        assert desk.folder("INBOX") == 3 and desk.folder("maildesk/quarantine") == 0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert desk.rows("SELECT count(*) n FROM quarantine")[0]["n"] == 0
    desk.once()
    ledger.settled(ledger.account("db-locked-once"))


@pytest.mark.sqlite_only  # an SQLite file locked by another writer
def test_the_daemon_waits_out_a_locked_database(desk, ledger, watch):
    """`run` in this process: the database is locked while mail arrives; the daemon logs
    database_busy, backs off, and handles the mail once the lock is gone."""
    app = desk.app()
    app.store.conn.execute("PRAGMA busy_timeout = 200")
    daemon = Daemon(app)
    problems = []

    def drive():
        try:
            assert watch.on("imap_connected").wait(30), "daemon did not connect"
            lock = hold_exclusive(desk.dir / "maildesk.db")
            ledger.complaints(2)
            assert watch.on("database_busy").wait(30), "daemon did not notice the lock"
            assert desk.sink.messages == []
            lock.execute("ROLLBACK")
            lock.close()
            desk.sink.wait_for(4, timeout=30)  # 2 acks + 2 staff notifications
        except BaseException as e:  # reported by the main thread
            problems.append(e)
        finally:
            daemon.stop()

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    driver = threading.Thread(target=drive)
    driver.start()
    try:
        assert daemon.run() == 0
    finally:
        daemon.stop()
        driver.join(60)
        app.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert not problems, problems
    summary = ledger.account("db-locked-run")
    ledger.settled(summary)
    assert desk.rows("SELECT count(*) n FROM quarantine")[0]["n"] == 0


def test_a_database_error_inside_a_message_never_quarantines_it(desk, ledger):
    """An error of the store (here "malformed", i.e. corruption) raised while handling a good
    message: the batch rolls back and the mail stays in the inbox, not in quarantine."""
    ledger.complaints(3)
    calls = Counter()

    def flaky(point, **facts):  # the workflow's fault hook, called at each named point
        if point == "receive":
            calls["n"] += 1
            if calls["n"] == 2:
                raise sqlite3.DatabaseError("database disk image is malformed")

    app = desk.app()
    app.workflow.fault = flaky
    with pytest.raises(sqlite3.DatabaseError):
        desk.run_once(app)
    assert desk.folder("INBOX") == 3 and desk.folder("maildesk/quarantine") == 0
    assert desk.rows("SELECT count(*) n FROM quarantine")[0]["n"] == 0
    desk.once()
    ledger.settled(ledger.account("db-error-in-message"))


def photo_complaint(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Photo Client <photo@example.fr>"
    msg["To"] = "support@imolocale.test"
    msg["Subject"] = "Photos du colis abîmé"
    msg["Message-ID"] = "<photo@example.fr>"
    msg.set_content("Bonjour, voici les photos du colis abîmé.")
    msg.add_attachment(os.urandom(size), maintype="image", subtype="jpeg", filename="colis.jpg")
    return msg.as_bytes()


@pytest.fixture
def small_disk():
    """A 2 MB tmpfs (we run as root in CI); None where mounting is not allowed."""
    where = Path(tempfile.mkdtemp(prefix="maildesk-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.sqlite_only  # the SQLite file on a full disk
def test_disk_full_while_saving_an_attachment(desk, ledger, small_disk):
    """The database on a 2 MB disk; a complaint with a 3 MB photo fills it. The run fails with
    one line, nothing is quarantined or half-stored, and once there is room everything goes through."""
    if small_disk is not None:
        db_path = small_disk / "maildesk.db"
        desk.write_config(storage={"database": str(db_path)})

        def db() -> sqlite3.Connection:
            conn = sqlite3.connect(db_path)
            conn.row_factory = sqlite3.Row
            return conn
        desk.db = db
    ledger.complaints(2)
    ledger.deliver(photo_complaint(3 * 1024 * 1024))
    ledger.complaints(1, prefix="after")
    if small_disk is not None:
        result = desk.cli("once")
        assert result.returncode == 1 and "database or disk is full" in result.stderr
        assert "Traceback" not in result.stderr
    else:  # no mount: the same SQLITE_FULL from a page limit on the daemon's own connection
        app = desk.app()
        pages = app.store.conn.execute("PRAGMA page_count").fetchone()[0]
        app.store.conn.execute(f"PRAGMA max_page_count = {pages + 300}")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            desk.run_once(app)
    assert desk.folder("INBOX") == 4 and desk.folder("maildesk/quarantine") == 0
    assert desk.rows("SELECT count(*) n FROM complaints")[0]["n"] == 0  # the batch rolled back whole
    assert desk.sink.messages == []
    if small_disk is not None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    desk.once()
    summary = ledger.account("disk-full")
    ledger.settled(summary)
    [att] = desk.rows("SELECT a.size, length(f.content) n FROM attachments a LEFT JOIN files f ON f.sha256 = a.sha256")
    assert att["size"] == att["n"] == 3 * 1024 * 1024


def test_oversized_message_is_recorded_in_part_and_kept_whole_in_the_mailbox(desk, ledger):
    """Above [mailbox] max_message_mb the message is read part by part: its text whole, the photo
    that does not fit by name and size only; at most max_message_mb are stored; the complaint is
    opened and the original stays whole in the mailbox (tests/integration/test_large_mail.py)."""
    desk.write_config(mailbox={"max_message_mb": 1})
    ledger.deliver(photo_complaint(3 * 1024 * 1024))
    desk.once()
    [row] = desk.rows("SELECT length(raw) n, body FROM messages WHERE direction = 'in'")
    assert row["n"] <= 1024 * 1024 and row["body"] == "Bonjour, voici les photos du colis abîmé."
    assert desk.rows("SELECT count(*) n FROM events WHERE kind = 'large_message'")[0]["n"] == 1
    [att] = desk.rows("SELECT a.filename, a.size, f.content FROM attachments a LEFT JOIN files f ON f.sha256 = a.sha256")
    assert (att["filename"], att["size"], att["content"]) == ("colis.jpg", 3 * 1024 * 1024, None)
    [kept] = desk.dovecot.fetch_all("maildesk/processed")
    assert len(kept) > 3 * 1024 * 1024
    ledger.settled(ledger.account("oversized"))
