"""Which daemon is active on a PostgreSQL store: a lease that a dead, frozen or cut-off process cannot keep.

The lease is a session-level advisory lock held on a connection of its own (never the store's pool
connection, which a restart may swap). PostgreSQL frees it when that session ends, and it ends a
silent one: the holder heartbeats every takeover_seconds/5, and its session carries an
idle_session_timeout (and TCP keepalives) well below takeover_seconds, so a process killed, frozen or
cut off loses the lock before a standby (polling at the same pace) takes it. The new active one
raises meta.leader_epoch under the writer lock and fences its store with it (store/postgres.py): a
transaction of the old one either committed before the takeover or cannot commit at all.

Every process keeps a `daemons` row (host, pid, role, seen_at) for `maildesk status`; times are the
server's clock, the one clock all machines share.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable

import psycopg
from psycopg import errors

from maildesk.logs import event as log_event
from maildesk.store.db import Fenced
from maildesk.store.postgres import WRITER_LOCK, PgStore

LEASE_LOCK = WRITER_LOCK + 2  # +1 is the migration lock
STANDBY_SEEN = 3  # takeover periods: a standby silent for longer is not listed by `status`


def _iso(moment: str) -> str:
    """A server time as store.db.iso writes times (UTC, seconds)."""
    return f"to_char(({moment}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"


NOW = _iso("now()")
DAY_AGO = _iso("now() - interval '1 day'")


def _monotonic() -> float:
    """The real monotonic clock: tests freeze and move time.monotonic with freezegun, not this."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _lock_where(key: int) -> str:
    """pg_locks spells a bigint advisory key as two oids."""
    return f"locktype = 'advisory' AND classid = {key >> 32} AND objid = {key & 0xFFFFFFFF} AND objsubid = 1"


class Lease:
    """This process's claim to be the active daemon; `lost` is set the moment it is gone."""

    def __init__(self, store: PgStore, password: str | None, takeover_seconds: float,
                 on_lost: Callable[[], None] = lambda: None):
        self.store = store
        self.password = password
        self.takeover = float(takeover_seconds)
        self.beat = self.takeover / 5
        self.poll = max(0.5, self.takeover / 5)
        self.on_lost = on_lost
        self.lost = threading.Event()
        self.conn: psycopg.Connection | None = None
        self.row_id: int | None = None
        self.epoch: int | None = None
        self._last_ok = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- the dedicated connection ------------------------------------------------------
    def _connect(self) -> None:
        """A session PostgreSQL ends after 0.6 takeover periods of silence (3 missed heartbeats)."""
        idle_ms = int(self.takeover * 600)
        keep = max(1, int(self.beat))
        self.conn = psycopg.connect(
            self.store.url, password=self.password, autocommit=True, connect_timeout=max(2, int(self.takeover)),
            application_name=f"maildesk lease {socket.gethostname()} {os.getpid()}"[:63],
            keepalives=1, keepalives_idle=keep, keepalives_interval=1, keepalives_count=2,
            tcp_user_timeout=int(self.takeover * 400),
            options=f"-c idle_session_timeout={idle_ms} -c tcp_keepalives_idle={keep} "
                    f"-c tcp_keepalives_interval=1 -c tcp_keepalives_count=2")
        self._register()

    def _register(self) -> None:
        """This process's `daemons` row (again after a reconnect); rows silent for a day go."""
        self.conn.execute(f"DELETE FROM daemons WHERE seen_at < {DAY_AGO}")
        if self.row_id is not None and self.conn.execute(
                f"UPDATE daemons SET seen_at = {NOW}, role = 'standby' WHERE id = %s", (self.row_id,)).rowcount:
            return
        self.row_id = self.conn.execute(
            f"INSERT INTO daemons(host, pid, started_at, seen_at, role) VALUES (%s, %s, {NOW}, {NOW}, 'standby') "
            "RETURNING id", (socket.gethostname(), os.getpid())).fetchone()[0]

    def _usable(self) -> bool:
        return self.conn is not None and not self.conn.closed and not self.conn.broken

    # --- taking it ---------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """One attempt (a standby's poll): True when this process is now the active one."""
        if not self._usable():
            self._connect()
        self.conn.execute(f"UPDATE daemons SET seen_at = {NOW} WHERE id = %s", (self.row_id,))
        if not self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_LOCK,)).fetchone()[0]:
            return False
        self._promote()
        self.lost.clear()
        self._last_ok = _monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="maildesk-lease", daemon=True)
        self._thread.start()
        return True

    def _promote(self) -> None:
        """One write transaction: the epoch raised, this row marked active; then the store is fenced
        with it. A writer frozen inside its transaction (idle in transaction, holding the writer lock)
        is ended first: it could otherwise keep the takeover waiting for ever."""
        while True:
            try:
                with self.conn.transaction():
                    self.conn.execute(f"SET LOCAL lock_timeout = '{int(self.takeover * 1000)}ms'")
                    self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                    epoch = int(self.conn.execute("UPDATE meta SET value = (value::bigint + 1)::text "
                                                  "WHERE key = 'leader_epoch' RETURNING value").fetchone()[0])
                    self.conn.execute("UPDATE daemons SET role = 'gone' WHERE role = 'active' AND id <> %s",
                                      (self.row_id,))
                    self.conn.execute(f"UPDATE daemons SET role = 'active', active_since = {NOW}, seen_at = {NOW}, "
                                      "epoch = %s WHERE id = %s", (epoch, self.row_id))
                break
            except errors.LockNotAvailable:
                self.conn.execute(
                    "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                    f"WHERE {_lock_where(WRITER_LOCK)} AND l.granted AND a.state = 'idle in transaction' "
                    "AND a.state_change < now() - make_interval(secs => %s)", (self.takeover,))
        self.epoch = epoch
        self.store.fence_epoch = epoch

    def holder(self) -> dict | None:
        """The active daemon (host, pid, since), from its row."""
        return active_daemon(self.conn)

    # --- keeping it --------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """seen_at refreshed and the lock checked every takeover/5; loss is declared before the
        server could free the lock (0.5 of the period without a good beat)."""
        while not self._stop.wait(self.beat):
            try:
                if _monotonic() - self._last_ok > self.takeover / 2:
                    raise Fenced("no heartbeat for half the takeover period (frozen or cut off)")
                self.conn.execute(f"UPDATE daemons SET seen_at = {NOW} WHERE id = %s", (self.row_id,))
                if not self.conn.execute(f"SELECT count(*) FROM pg_locks WHERE {_lock_where(LEASE_LOCK)} "
                                         "AND pid = pg_backend_pid() AND granted").fetchone()[0]:
                    raise Fenced("the lease's lock is gone")
                self._last_ok = _monotonic()
            except (psycopg.Error, Fenced) as e:
                self._lose(" ".join(str(e).split())[:200])
                return

    def _lose(self, why: str) -> None:
        if not self.lost.is_set():
            self.lost.set()
            log_event("lease_lost", severity=40, epoch=self.epoch, reason=why)
            self.on_lost()

    def fenced(self, e: BaseException) -> bool:
        """A transaction refused by the fence: the lease is lost, whatever the heartbeat saw."""
        if isinstance(e, Fenced):
            self._lose(str(e))
            return True
        return False

    def active(self) -> bool:
        """Held, and heard from PostgreSQL recently (a thawed process may not have noticed yet)."""
        return not self.lost.is_set() and _monotonic() - self._last_ok <= self.takeover / 2

    def step_down(self) -> None:
        """After a loss: the session is ended (freeing the lock if it were somehow still held); the
        store stays fenced with the old epoch, so nothing more commits until the next takeover."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.takeover))
        self.close_connection()

    def close_connection(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
            self.conn = None

    def close(self) -> None:
        """Clean exit: the row goes and the lock with the session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.takeover))
        try:
            if self._usable():
                self.conn.execute("DELETE FROM daemons WHERE id = %s", (self.row_id,))
        except psycopg.Error:
            pass
        self.close_connection()


def active_daemon(conn) -> dict | None:
    """The daemon holding the lease now: its row (host, pid, since), or None when nobody holds it."""
    row = conn.execute(f"SELECT d.host, d.pid, d.active_since, d.seen_at, d.epoch FROM daemons d WHERE d.role = 'active' "
                       f"AND EXISTS (SELECT 1 FROM pg_locks WHERE {_lock_where(LEASE_LOCK)} AND granted) "
                       "ORDER BY d.epoch DESC LIMIT 1").fetchone()
    return {"host": row[0], "pid": row[1], "since": row[2], "seen": row[3], "epoch": row[4]} if row else None


def daemons(store: PgStore, takeover_seconds: float) -> dict:
    """For `maildesk status`: the active daemon (or None) and the standbys seen lately."""
    active = active_daemon(store.conn.raw)
    rows = store.conn.raw.execute(
        f"SELECT host, pid, seen_at FROM daemons WHERE role = 'standby' "
        f"AND seen_at >= {_iso('now() - make_interval(secs => %s)')} ORDER BY started_at",
        (takeover_seconds * STANDBY_SEEN,)).fetchall()
    return {"active": active, "standbys": [{"host": r[0], "pid": r[1], "seen": r[2]} for r in rows]}
