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

import hashlib
import json
import os
import signal
import threading
from datetime import datetime

import schedule

from maildesk import standby
from maildesk.adapters.imap import Inbox
from maildesk.adapters.imap_types import ConnectionLost, FolderMissing, LoginRefused, MailboxError, Unfetchable
from maildesk.adapters.systemd import sd_notify
from maildesk.core import policy
from maildesk.inbound.parse import ParseError, parse
from maildesk.logs import event as log_event
from maildesk.service import first_start, retention, spam
from maildesk.service.ops import RECOVER_KEY, recover
from maildesk.service.intake import Outcome
from maildesk.store import inbox as inbox_state
from maildesk.store.db import DatabaseReadOnly, StoreUnwell, iso, store_trouble
from maildesk.store.inbox import UNFETCHABLE_TRIES
from maildesk.testing import faults

MAX_BACKOFF = 300
LOOP_ALERT_AFTER = 5  # failed passes in a row before admins are told (1+2+4+8+16 s: about half a minute)



class Daemon:
    def __init__(self, app):
        self.app = app
        self.cfg = app.cfg
        self.store = app.store
        self.clock = app.clock
        self.stop_event = threading.Event()  # SIGTERM: the process ends
        self.halt = threading.Event()  # stop acting: SIGTERM, or the lease lost (standby.py)
        self.lease = None  # on PostgreSQL, while this process is the active daemon (store/leader.py)
        self.inbox: Inbox | None = None
        self.last_uid = 0

    # --- one pass ------------------------------------------------------------------
    def process_inbox(self) -> int:
        """Handle every message waiting in the folder. Returns how many were handled."""
        inbox = self.inbox
        cfg = inbox.cfg
        state_key = f"last_uid:{cfg.folder}:{inbox.uidvalidity}"
        after = int(self.store.get_state(state_key) or 0) if cfg.read_only else 0
        refused = self._unfetchable_state()
        inbox.skip = {int(u) for u, r in refused.items() if r["tries"] >= UNFETCHABLE_TRIES}
        uids = inbox.pending(after)
        max_bytes = int(cfg.max_message_mb * 1024 * 1024)
        left = self._first_start(uids)
        if left:
            inbox.skip |= left
            uids = [u for u in uids if u not in left]
        handled = 0
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            done, quarantined = [], []
            with self.store.transaction():
                for fetched in inbox.fetch(chunk, max_bytes):
                    if isinstance(fetched, Unfetchable):
                        self._refused(fetched, refused)
                        continue
                    refused.pop(str(fetched.uid), None)
                    faults.step("before_message")
                    outcome = self._receive(fetched)
                    (quarantined if outcome.action == "quarantine" else done).append(fetched.uid)
                    del fetched, outcome  # a big message is let go before the next is fetched
                    faults.step("after_message")
                if cfg.read_only and chunk:
                    self.store.set_state(state_key, str(max(chunk)))
                inbox_state.set_state_json(self.store, self._unfetchable_key(), refused)
                self.store.set_state("last_poll", iso(self.clock.now()))
            faults.step("after_commit")
            inbox.move(done, cfg.processed_folder)
            faults.step("after_move_processed")
            inbox.move(quarantined, cfg.quarantine_folder)
            faults.step("after_move_quarantine")
            handled += len(chunk)
            sd_notify("WATCHDOG=1")  # a long backlog is progress, not a hang
        if not uids:
            with self.store.transaction():
                self.store.set_state("last_poll", iso(self.clock.now()))
        return handled

    # --- messages the server will not serve ---------------------------------------------
    def _unfetchable_key(self) -> str:
        return f"unfetchable:{self.inbox.cfg.folder}:{self.inbox.uidvalidity}"

    def _unfetchable_state(self) -> dict[str, dict]:
        """UID -> {tries, size, subject, reason}: messages the server refused to serve."""
        return inbox_state.state_json(self.store, self._unfetchable_key(), {})

    def _refused(self, item: Unfetchable, refused: dict) -> None:
        """One more pass where the server would not give this message; at the last try it is
        left in the inbox for good and admins are told what to do."""
        entry = refused.setdefault(str(item.uid), {"tries": 0})
        entry.update(tries=entry["tries"] + 1, size=item.size, subject=item.subject, reason=item.reason)
        if entry["tries"] < UNFETCHABLE_TRIES:
            log_event("message_refused", severity=30, uid=item.uid, tries=entry["tries"], reason=item.reason)
            return
        log_event("message_unfetchable", severity=40, uid=item.uid, size=item.size, reason=item.reason,
                  folder=self.inbox.cfg.folder)
        what = (f"The IMAP server refused {UNFETCHABLE_TRIES} times to give maildesk the message with UID "
                f"{item.uid} in {self.inbox.cfg.folder} ({item.size} bytes, subject: {item.subject or 'unknown'}). "
                f"The server said: {item.reason}. maildesk leaves it where it is and goes on with the other mail.")
        fix = ("Open it in the web mail: if it shows, forward it to the support address or answer it by hand; "
               "if not, it may be damaged on the server. Moving it out of the folder and back gives it a new "
               "UID, which maildesk tries again.")
        self._alert_admins("message_unfetchable", f"a message the mail server will not serve (UID {item.uid})",
                           what, fix)

    def _alert_admins(self, kind: str, title: str, what: str, fix: str) -> None:
        """Queue a mail to the admins; a failure to queue is logged, never raised (the log and
        `status` say it anyway)."""
        try:
            with self.store.transaction():
                self.app.workflow.queue(None, policy.Mail("admin_mailbox", tuple(self.cfg.teams.admins), kind,
                                                          "admin", context={"title": title, "what": what,
                                                                            "fix": fix}), self.clock.now())
        except Exception:  # the store or the templates are the trouble: the log must do
            log_event("admin_alert_failed", severity=40, kind=kind, exc_info=True)

    def _first_start(self, uids: list[int]) -> set[int]:
        return first_start.left_untouched(self.store, self.inbox, uids, self.clock.now())

    def process_junk(self) -> int:
        """The spam folder (service/spam.py); returns how many mails were moved to the inbox."""
        return spam.process_junk(self.cfg, self.store, self.inbox)

    def backfill(self, since: datetime):
        """`maildesk backfill --since DATE` (service/first_start.py)."""
        self.inbox = self.app.make_inbox()
        self.connect()
        try:
            return first_start.backfill(self.app, self.inbox, since)
        finally:
            self.inbox.close()

    def process_sent_folder(self) -> int:
        """Shared-mailbox mode: what staff sent from the support account itself."""
        folder = self.inbox.sent_folder_name()
        if not folder:
            return 0
        key = f"last_uid:sent:{folder}"
        seen = self.store.get_state(key)
        validity, top, fetched = self.inbox.read_folder(
            folder, int(seen.split(":")[1]) if seen else None, int(self.cfg.mailbox.max_message_mb * 1024 * 1024),
            validity=int(seen.split(":")[0]) if seen else None)
        now = self.clock.now()
        with self.store.transaction():
            for item in fetched:
                extra = {"omitted": item.omitted} if item.omitted else {}
                self.app.workflow.record_sent(item.raw, item.arrived_at, now, **extra)
            self.store.set_state(key, f"{validity}:{top}")
        return len(fetched)

    def process_retention(self) -> dict | None:
        """Once a day, mail older than `[retention] anonymise_after_days` leaves maildesk's own
        folders (service/retention.sweep_mailbox): here, where the IMAP connection is held."""
        return retention.sweep_mailbox(self.store, self.cfg, self.inbox, self.clock.now())

    def _receive(self, fetched):
        now = self.clock.now()
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
            log_event("processing_error", severity=40, uid=fetched.uid, exc_info=True)
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
        inbox_state.quarantine(self.store, now, self.cfg.mailbox.quarantine_folder, message_id, digest, sender,
                               subject, fetched.size, reason)
        log_event("quarantined", severity=30, uid=fetched.uid, size=fetched.size, reason=reason[:200])

    def connect(self) -> None:
        """Log in, and count it: Gmail locks an account out after too many logins."""
        self.inbox.connect()
        inbox_state.count_login(self.store, self.clock.now())

    def tick(self) -> None:
        """The clock's work: the sweep, the digest."""
        now = self.clock.now()
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
            except StoreUnwell:
                raise
            except Exception as e:  # one broken job must not stop the inbox or the other jobs
                if self.fenced(e):
                    raise
                log_event("clock_job_failed", severity=40, job=getattr(job, "__qualname__", repr(job)), exc_info=True)

    def flush(self) -> None:
        self.app.outbox.flush(self.clock.now(), stopping=self.halted)

    # --- entry points --------------------------------------------------------------
    def once(self) -> int:
        """Everything waiting, everything due, then exit: for cron and tests."""
        with standby.alone(self):
            self.app.outbox.release_dead_leases()
            self.inbox = self.app.make_inbox()
            try:
                self.connect()
                self.recover()
                self.process_inbox()
                if self.process_junk():
                    self.process_inbox()  # what was rescued from spam, now
                self.process_sent_folder()
                self.process_retention()
            finally:
                self.inbox.close()
            self.tick()
            self.flush()
            return 0

    def run(self) -> int:
        """Until SIGTERM. On PostgreSQL as one of several (standby.py); on SQLite alone (InstanceLock)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        return standby.run(self)

    def serve(self) -> None:
        """The loop, until halted (SIGTERM, or the lease lost)."""
        self.app.outbox.release_dead_leases()
        scheduler = schedule.Scheduler()
        scheduler.every(self.cfg.policy.sweep_seconds).seconds.do(self.tick)
        log_event("started", pid=os.getpid(), folder=self.cfg.mailbox.folder,
                  mode="read-only" if self.cfg.mailbox.read_only else None)
        delay = 1.0
        failures = 0  # passes in a row that ended in an error; back-off grows until a whole pass works
        first_pass = True  # trouble recorded by an earlier run ends with this run's first whole pass
        self.inbox = self.app.make_inbox()
        first_tick = True
        try:
            while not self.halted():
                sd_notify("WATCHDOG=1")  # each turn of the loop; IDLE waits at most a minute
                try:
                    if self.inbox.client is None:
                        self.connect()
                        log_event("imap_connected", host=self.cfg.mailbox.host,
                                  idle=self.inbox.can_idle and self.cfg.mailbox.idle)
                        self.recover()
                    self.process_inbox()
                    if self.process_junk():
                        self.process_inbox()
                    self.process_sent_folder()
                    self.process_retention()
                    if first_tick:  # after the inbox: a digest that fell due counts the mail that waited
                        first_tick = False
                        self.tick()  # deadlines that passed while we were stopped, at once
                    scheduler.run_pending()
                    self.flush()
                    if failures or first_pass:  # a whole pass worked: only now is the back-off over
                        self._recovered(failures)
                        first_pass = False
                    delay, failures = 1.0, 0
                    if self.halted():
                        break
                    self.inbox.wait(max(0.5, min(scheduler.idle_seconds or 60, 60)), self.halted)
                    continue
                except FolderMissing as e:  # retrying cannot make the folder appear: stop, say which
                    log_event("imap_folder_missing", severity=50, error=str(e)[:500])
                    raise
                except (ConnectionLost, LoginRefused, MailboxError) as e:
                    self.inbox.close()
                    # a connection ending after a good pass is routine (Gmail ends an OAuth2 session
                    # with BYE every hour): INFO; a second failure in a row is news
                    severity = 40 if isinstance(e, LoginRefused) else 30 if failures else 20
                    log_event("imap_unavailable", severity=severity, error=str(e)[:200], retry_in=f"{delay:.0f}s")
                    error = str(e)
                    try:
                        if first_tick:  # no inbox to read: the deadlines still may not wait for it
                            first_tick = False
                            self.tick()
                        scheduler.run_pending()
                        self.flush()
                    except Exception as trouble:  # the clock and the outbox fail on their own; the wait still comes
                        if self.fenced(trouble):
                            break
                        log_event("loop_error", severity=40, retry_in=f"{delay:.0f}s", exc_info=True)
                except StoreUnwell as e:
                    if "readonly" in str(e):  # rights, not a busy moment: retrying never helps
                        log_event("database_readonly", severity=50, error=str(e)[:200])
                        raise DatabaseReadOnly(f"database {self.cfg.database_path} became read-only for "
                                               f"this user: {e}; fix its owner, then start again") from None
                    log_event("database_busy", severity=40, error=str(e)[:200], retry_in=f"{delay:.0f}s")
                    error = f"database: {e}"
                except Exception as e:  # last resort: a bug must not stop the helpdesk; say it loudly, go on
                    if self.fenced(e):
                        break
                    log_event("loop_error", severity=40, retry_in=f"{delay:.0f}s", exc_info=True)
                    self.inbox.close()
                    error = f"{type(e).__name__}: {e}"
                failures += 1
                if failures == LOOP_ALERT_AFTER:
                    self._failing(failures, error)
                self.stop_event.wait(delay)  # a lease lost meanwhile: halted() ends the loop after the pause
                delay = min(delay * 2, MAX_BACKOFF)
        finally:
            self.inbox.close()

    def _failing(self, failures: int, error: str) -> None:
        """Passes keep failing: the log (always), `status` (from the database, when it works),
        and the admins by mail (when mail works)."""
        log_event("loop_failing", severity=40, failures=failures, error=error[:300])
        try:
            with self.store.transaction():
                self.store.set_state("loop_trouble", json.dumps({"since": iso(self.clock.now()), "error": error[:300]}))
        except Exception:  # the database may be the trouble itself: the log line above stands
            return
        self._alert_admins("loop_failing", "maildesk keeps failing",
                           f"maildesk's main loop has failed {failures} times in a row and retries with a "
                           f"growing pause (at most {MAX_BACKOFF // 60} min). Last error: {error[:300]}",
                           "See the log (journalctl -u maildesk) and `maildesk status`; `maildesk check` "
                           "tests the mail servers.")
        try:
            self.flush()
        except Exception:  # mail does not work either: the log and `status` must do
            log_event("admin_alert_failed", severity=40, kind="loop_failing")

    def _recovered(self, failures: int) -> None:
        if not self.store.get_state("loop_trouble"):
            return
        log_event("loop_recovered", failures=failures)
        with self.store.transaction():
            self.store.set_state("loop_trouble", "")

    def stop(self) -> None:
        self.stop_event.set()
        self.halt.set()

    def halted(self) -> bool:
        """Stop acting now: stopping, or no longer sure to be the active daemon."""
        return (self.stop_event.is_set() or self.halt.is_set()
                or (self.lease is not None and not self.lease.active()))

    def fenced(self, e: BaseException) -> bool:
        """A transaction refused because another daemon took over (store/leader.py)."""
        return self.lease is not None and self.lease.fenced(e)

    def recover(self) -> None:
        """After `maildesk restore`: read the processed folder again (ops.recover), once."""
        if self.store.get_state(RECOVER_KEY):
            recover(self)
