"""Which process may act on the store. SQLite: the one holding the InstanceLock (lock.py), others
refused. PostgreSQL: any number of `maildesk run` share one database, one of them active.

On PostgreSQL each waits as a standby until it holds the lease (store/leader.py), then runs the
daemon's loop; when the lease is lost or a transaction is fenced, it stops touching the mailbox, the
outbox and the clock at once and waits as a standby again. `once` takes the lease or refuses, naming
the active one.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from maildesk.adapters.systemd import sd_notify
from maildesk.config import read_secret
from maildesk.lock import AlreadyRunning, InstanceLock
from maildesk.logs import event as log_event


def _lease(daemon):
    from maildesk.store.leader import Lease  # psycopg is loaded only on PostgreSQL
    storage = daemon.cfg.storage
    return Lease(daemon.store, read_secret("storage", storage, daemon.app.env), storage.takeover_seconds,
                 on_lost=daemon.halt.set)


def run(daemon) -> int:
    """`maildesk run` until SIGTERM: on PostgreSQL standby, active, standby again after a loss."""
    if daemon.store.kind != "postgresql":
        lock = InstanceLock(daemon.cfg.database_path)
        lock.acquire()
        sd_notify("READY=1")
        try:
            daemon.serve()
        finally:
            sd_notify("STOPPING=1")
            lock.release()
            log_event("stopped", pid=os.getpid())
        return 0
    lease = _lease(daemon)
    sd_notify("READY=1")
    try:
        while wait_active(lease, daemon.stop_event):
            daemon.halt.clear()
            if daemon.stop_event.is_set():
                break
            log_event("active", pid=os.getpid(), epoch=lease.epoch)
            daemon.lease = lease
            try:
                daemon.serve()
            except Exception as e:
                if not lease.fenced(e):
                    raise
            if daemon.stop_event.is_set():
                break
            log_event("lost_active", severity=40, pid=os.getpid(), epoch=lease.epoch)
            lease.step_down()
    finally:
        lease.close()
        sd_notify("STOPPING=1")
        log_event("stopped", pid=os.getpid())
    return 0


def wait_active(lease, stop: threading.Event) -> bool:
    """A standby until this process holds the lease (True) or `stop` is set (False). Says once who
    is active; rides out PostgreSQL being away at the poll's pace."""
    import psycopg
    said = False
    while not stop.is_set():
        sd_notify("WATCHDOG=1")
        try:
            if lease.try_acquire():
                return True
            if not said:
                holder = lease.holder() or {}
                log_event("standby", pid=os.getpid(), active_host=holder.get("host"),
                          active_pid=holder.get("pid"), active_since=holder.get("since"))
                said = True
        except psycopg.OperationalError as e:
            log_event("lease_unavailable", severity=30, error=" ".join(str(e).split())[:200])
            lease.close_connection()
        stop.wait(lease.poll)
    return False


@contextmanager
def alone(daemon):
    """`maildesk once`: the InstanceLock, or on PostgreSQL the lease, for its run; AlreadyRunning
    (naming the active daemon) when another holds it."""
    if daemon.store.kind != "postgresql":
        lock = InstanceLock(daemon.cfg.database_path)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
        return
    lease = _lease(daemon)
    try:
        if not lease.try_acquire():
            h = lease.holder() or {}
            raise AlreadyRunning(f"another maildesk is already running, active on {daemon.store.where} (host {h.get('host', '?')}, "
                                 f"pid {h.get('pid', '?')}, since {h.get('since', '?')})")
        daemon.lease = lease
        yield
    finally:
        daemon.lease = None
        lease.close()
