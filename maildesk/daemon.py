"""The main loop: inbox -> workflow, clock ticks, outbox flush.

One plain loop, easy to reason about and to stop:

    while not stopping:
        handle what waits in the inbox   (commit, then move)
        run what the scheduler says is due (sweep, digest)
        flush the outbox
        wait for IDLE news, or poll

SIGTERM/SIGINT set `stopping`; the batch in hand finishes first. The loop
rides out a lost IMAP server with back-off; the clock and the outbox keep
working meanwhile.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import socket
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import schedule

from . import faults
from .imap import ConnectionLost, Inbox, LoginRefused, MailboxError
from .logs import event as log_event
from .mail import parse, ParseError
from .store import DatabaseReadOnly, iso
from .workflow import Outcome

MAX_BACKOFF = 300


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def sd_notify(state: str) -> None:
    """Tell systemd (`Type=notify`, `WatchdogSec=`) that we are ready, alive or stopping, so a
    stuck daemon is restarted; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), address)
    except OSError:
        pass  # systemd went away: nothing to tell


class AlreadyRunning(Exception):
    pass


def store_trouble(e: BaseException) -> bool:
    """A database or disk problem (locked, full, corrupt, I/O error): no fault of the message,
    which must stay in the inbox rather than go to quarantine."""
    if isinstance(e, (sqlite3.IntegrityError, sqlite3.DataError)):
        return False  # this message's own data broke a constraint or a size limit
    return isinstance(e, (sqlite3.Error, OSError))


class InstanceLock:
    """One daemon per database: an exclusive flock beside the database file."""

    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"another maildesk (pid {holder}) is already running on {self.path.with_suffix('')}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def held_elsewhere(self) -> int | None:
        """The pid of a running daemon, or None: for `maildesk status`."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Daemon:
    def __init__(self, app):
        self.app = app
        self.cfg = app.cfg
        self.store = app.store
        self.stop_event = threading.Event()
        self.inbox: Inbox | None = None
        self.last_uid = 0

    # --- one pass ------------------------------------------------------------------
    def process_inbox(self) -> int:
        """Handle every message waiting in the folder. Returns how many were handled."""
        inbox = self.inbox
        cfg = inbox.cfg
        state_key = f"last_uid:{cfg.folder}:{inbox.uidvalidity}"
        after = int(self.store.get_state(state_key) or 0) if cfg.read_only else 0
        uids = inbox.pending(after)
        handled = 0
        max_bytes = int(cfg.max_message_mb * 1024 * 1024)
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            done, quarantined = [], []
            with self.store.transaction():
                for fetched in inbox.fetch(chunk, max_bytes):
                    faults.step("before_message")
                    outcome = self._receive(fetched)
                    (quarantined if outcome.action == "quarantine" else done).append(fetched.uid)
                    del fetched, outcome  # a big message is let go before the next is fetched
                    faults.step("after_message")
                if cfg.read_only and chunk:
                    self.store.set_state(state_key, str(max(chunk)))
                self.store.set_state("last_poll", iso(utcnow()))
            faults.step("after_commit")
            inbox.move(done, cfg.processed_folder)
            faults.step("after_move_processed")
            inbox.move(quarantined, cfg.quarantine_folder)
            faults.step("after_move_quarantine")
            handled += len(chunk)
            sd_notify("WATCHDOG=1")  # a long backlog is progress, not a hang
        if not uids:
            with self.store.transaction():
                self.store.set_state("last_poll", iso(utcnow()))
        return handled

    def process_sent_folder(self) -> int:
        """Shared-mailbox mode: what staff sent from the support account itself."""
        folder = self.inbox.sent_folder_name()
        if not folder:
            return 0
        key = f"last_uid:sent:{folder}"
        seen = self.store.get_state(key)
        validity, top, fetched = self.inbox.read_folder(
            folder, int(seen.split(":")[1]) if seen else None, int(self.cfg.mailbox.max_message_mb * 1024 * 1024))
        if seen and int(seen.split(":")[0]) != validity:  # folder rebuilt: start again from now
            validity, top, fetched = validity, top, []
        now = utcnow()
        with self.store.transaction():
            for item in fetched:
                extra = {"omitted": item.omitted} if item.omitted else {}
                self.app.workflow.record_sent(item.raw, item.arrived_at, now, **extra)
            self.store.set_state(key, f"{validity}:{top}")
        return len(fetched)

    def _receive(self, fetched):
        now = utcnow()
        try:
            with self.store.transaction():
                extra = {"omitted": fetched.omitted} if fetched.omitted else {}  # a large message's attachments
                outcome = self.app.workflow.receive(fetched.raw, fetched.arrived_at, now, **extra)
                if fetched.large is not None:
                    log_event("large_message", outcome.ref, uid=fetched.uid, size=fetched.size,
                              kept=len(fetched.raw), omitted=len(fetched.omitted))
                    if outcome.ref:
                        self.store.add_event(self.store.complaint(outcome.ref)["id"], now, "maildesk",
                                             "large_message", size=fetched.size, kept_bytes=len(fetched.raw),
                                             **fetched.large, note="original kept in the mailbox")
                elif fetched.truncated and outcome.ref:
                    self.store.add_event(self.store.complaint(outcome.ref)["id"], now, "maildesk", "truncated",
                                         size=fetched.size, note="original kept in the mailbox")
        except Exception as e:  # a message that breaks processing is set aside, never lost
            if store_trouble(e):
                raise  # the store is unwell, not the message: leave it in the inbox for later
            log_event("processing_error", level=40, uid=fetched.uid, exc_info=True)
            outcome = Outcome("quarantine", reason=f"processing failed: {type(e).__name__}: {e}")
        if outcome.action == "quarantine":
            self._quarantine(fetched, outcome.reason, now)
        elif outcome.action == "duplicate":
            log_event("duplicate", message_id=outcome.message_id, uid=fetched.uid)
        return outcome

    def _quarantine(self, fetched, reason: str, now: datetime) -> None:
        digest = hashlib.sha256(fetched.raw).hexdigest()
        sender = subject = message_id = None
        try:
            mail = parse(fetched.raw)
            sender, subject, message_id = mail.from_addr, mail.subject[:200], mail.message_id
        except ParseError:
            pass
        self.store.conn.execute(
            "INSERT INTO quarantine (at, folder, message_id, sha256, sender, subject, size, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET at = excluded.at, "
            "reason = excluded.reason, status = 'held'",
            (iso(now), self.cfg.mailbox.quarantine_folder, message_id, digest, sender, subject,
             fetched.size, reason[:500]))
        log_event("quarantined", level=30, uid=fetched.uid, size=fetched.size, reason=reason[:200])

    def tick(self) -> None:
        """The clock's work: the sweep, the digest."""
        now = utcnow()
        total = 0
        while True:
            with self.store.transaction():
                n = self.app.workflow.sweep(now)
            total += n
            if n < 1000:
                break
        for job in self.app.clock_jobs:
            try:
                job(now)
            except sqlite3.OperationalError:
                raise
            except Exception:  # one broken job must not stop the inbox or the other jobs
                log_event("clock_job_failed", level=40, job=getattr(job, "__qualname__", repr(job)), exc_info=True)

    def flush(self) -> None:
        self.app.outbox.flush(utcnow(), stopping=self.stop_event.is_set)

    # --- entry points --------------------------------------------------------------
    def once(self) -> int:
        """Everything waiting, everything due, then exit: for cron and tests."""
        lock = InstanceLock(self.cfg.database_path)
        lock.acquire()
        try:
            self.app.outbox.release_dead_leases()
            self.inbox = self.app.make_inbox()
            try:
                self.inbox.connect()
                self.recover()
                self.process_inbox()
                self.process_sent_folder()
            finally:
                self.inbox.close()
            self.tick()
            self.flush()
            return 0
        finally:
            lock.release()

    def run(self) -> int:
        lock = InstanceLock(self.cfg.database_path)
        lock.acquire()
        self.app.outbox.release_dead_leases()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        scheduler = schedule.Scheduler()
        scheduler.every(self.cfg.policy.sweep_seconds).seconds.do(self.tick)
        log_event("started", pid=os.getpid(), folder=self.cfg.mailbox.folder,
                  mode="read-only" if self.cfg.mailbox.read_only else None)
        delay = 1.0
        self.inbox = self.app.make_inbox()
        first_tick = True
        sd_notify("READY=1")
        try:
            while not self.stop_event.is_set():
                sd_notify("WATCHDOG=1")  # each turn of the loop; IDLE waits at most a minute
                try:
                    if self.inbox.client is None:
                        self.inbox.connect()
                        log_event("imap_connected", host=self.cfg.mailbox.host,
                                  idle=self.inbox.can_idle and self.cfg.mailbox.idle)
                        delay = 1.0
                        self.recover()
                    self.process_inbox()
                    self.process_sent_folder()
                    if first_tick:  # after the inbox: a digest that fell due counts the mail that waited
                        first_tick = False
                        self.tick()  # deadlines that passed while we were stopped, at once
                    scheduler.run_pending()
                    self.flush()
                    if self.stop_event.is_set():
                        break
                    self.inbox.wait(max(0.5, min(scheduler.idle_seconds or 60, 60)), self.stop_event.is_set)
                except (ConnectionLost, LoginRefused, MailboxError) as e:
                    self.inbox.close()
                    log_event("imap_unavailable", level=40 if isinstance(e, LoginRefused) else 30,
                              error=str(e)[:200], retry_in=f"{delay:.0f}s")
                    if first_tick:  # no inbox to read: the deadlines still may not wait for it
                        first_tick = False
                        self.tick()
                    scheduler.run_pending()
                    self.flush()
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                except sqlite3.OperationalError as e:
                    if "readonly" in str(e):  # rights, not a busy moment: retrying never helps
                        log_event("database_readonly", level=50, error=str(e)[:200])
                        raise DatabaseReadOnly(f"database {self.cfg.database_path} became read-only for "
                                               f"this user: {e}; fix its owner, then start again") from None
                    log_event("database_busy", level=40, error=str(e)[:200], retry_in=f"{delay:.0f}s")
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
                except Exception:  # last resort: a bug must not stop the helpdesk; say it loudly, go on
                    log_event("loop_error", level=40, retry_in=f"{delay:.0f}s", exc_info=True)
                    self.inbox.close()
                    self.stop_event.wait(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
        finally:
            sd_notify("STOPPING=1")
            self.inbox.close()
            lock.release()
            log_event("stopped", pid=os.getpid())
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def recover(self) -> None:
        """After `maildesk restore`: read the processed folder again (ops.recover), once."""
        from .ops import RECOVER_KEY, recover
        if self.store.get_state(RECOVER_KEY):
            recover(self)
