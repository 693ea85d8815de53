"""The SQLite store: one connection, its PRAGMAs, `transaction()`, and the opening modes
(read-only for the monitoring commands, `migrate=True` for `maildesk migrate`).

Times are stored as ISO-8601 UTC strings of one fixed shape
(`2026-11-24T08:12:03+00:00`) so that string order is time order and the
indexes on due times work. The policy lives elsewhere: the store only
knows how to read and write rows.

The hot path (a new complaint writes some eight rows in one transaction) talks to
sqlite3 directly: a plain INSERT of an `events` row costs 4-5 us, sqlite-utils'
`table.insert()` 60-80 us, as it inspects the table on every call (10,000 rows
each in one transaction, WAL, on the 2-core build machine, November 2026).
sqlite-utils serves the rest: values plain SQL cannot take (see `insert`).

PostgreSQL is the same Store (store/postgres.py, chosen by store/opening.py): it runs the
same named queries, rewritten by store/dialect.py, and raises its driver's errors as
subclasses of the error names below, which are all that leaves this package.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils

from maildesk.core.addresses import mailbox_key
from maildesk.store import migrations
from maildesk.store.sql import recent_ids

# What callers catch instead of importing sqlite3 or psycopg: the store itself is unwell (locked,
# disk full, I/O, PostgreSQL gone), not the row or the message at hand; any database error at all.
# store/postgres.py raises psycopg's errors as subclasses of these, so callers name one set.
StoreUnwell = sqlite3.OperationalError
StoreError = sqlite3.Error


class StoreUnreachable(Exception):
    """PostgreSQL does not answer at start (down, refused, wrong password): one line for the admin."""


def safe_url(url: str) -> str:
    """A PostgreSQL URL as logs and messages may show it: never a password, even one written into it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Fenced(Exception):
    """This daemon is no longer the active one (store/leader.py): another took over, so nothing more
    is committed here."""


def store_trouble(e: BaseException) -> bool:
    """A database or disk problem (locked, full, corrupt, I/O error, connection lost, fenced): no
    fault of the message, which must stay in the inbox rather than go to quarantine."""
    if isinstance(e, Fenced):
        return True
    if isinstance(e, (sqlite3.IntegrityError, sqlite3.DataError)):
        return False  # this message's own data broke a constraint or a size limit
    return isinstance(e, (sqlite3.Error, OSError))


def file_trouble(e: BaseException) -> bool:
    """Locked, disk full, not a database at all, PostgreSQL gone: told in one line. (An
    IntegrityError or a misused query is a bug and keeps its traceback.)"""
    return isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError

# Tables keyed by `id INTEGER PRIMARY KEY` that Store.insert/update write with plain SQL when
# every value is a plain SQLite value; anything else goes through sqlite-utils as before.
_PLAIN_TABLES = frozenset({"complaints", "messages", "attachments", "events", "outbox", "notices"})
# plain-SQL inserts also for `processed` (one row per message; keyed by message_id, nobody uses the
# returned rowid)
_PLAIN_INSERTS = _PLAIN_TABLES | {"processed"}
_PLAIN = frozenset({str, int, float, bytes, type(None)})
_INSERTS: dict[tuple, str] = {}


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SchemaError(Exception):
    """The database's schema is not the one this code was written for: one line saying what to run."""


class NoSchemaYet(SchemaError):
    """Nothing there yet (no SQLite file, an empty PostgreSQL database): the daemon's first start
    creates it; only a reading command meets this."""


class DatabaseReadOnly(Exception):
    """maildesk cannot write its database (file or folder rights): a fatal, one-line error."""


def check_writable(path: Path) -> None:
    """Raise DatabaseReadOnly when this process could not write the database (or its WAL files,
    or create them): better one clear line at start than a daemon retrying for ever."""
    folder = path.parent
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            raise DatabaseReadOnly(f"database file {p} is not writable by this user "
                                   f"({_user()}): {_owner_hint(path)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseReadOnly(f"folder {folder} is not writable by this user ({_user()}); SQLite needs "
                               f"to create its journal files there: {_owner_hint(path)}")


def _user() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _owner_hint(path: Path) -> str:
    owner = file_owner(path if path.exists() else path.parent)
    return f"run maildesk as {owner}, or `chown -R {owner}: {path.parent}`"


def file_owner(path: Path) -> str:
    import pwd
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _sha256(content: bytes | None) -> str | None:
    return hashlib.sha256(content).hexdigest() if content is not None else None


class Store:
    """One SQLite database (store/postgres.py: the same on PostgreSQL); `transaction()` is the only way to write.

    `readonly=True` (the read commands) opens it without any write, not even the
    WAL switch, so a monitoring user with read rights can use it. A new, empty
    database is created at the current schema; an existing one must already be
    at it (`maildesk migrate` is the only thing that changes a schema:
    `migrate=True`)."""

    kind = "sqlite"

    def __init__(self, path: Path | str, *, readonly: bool = False, migrate: bool = False):
        self.path = Path(path)
        self.where = str(self.path)  # what messages name: the file, or the PostgreSQL URL without a password
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise NoSchemaYet(f"no database at {self.path} yet: the daemon creates it on its first start "
                                  f"(or run `maildesk migrate`)")
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                   isolation_level=None, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_writable(self.path)
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.create_function("mailbox_key", 1, mailbox_key, deterministic=True)  # migration 7
        conn.create_function("sha256", 1, _sha256, deterministic=True)  # migration 12
        self.conn = conn
        try:
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self.version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as e:
            conn.close()
            if "readonly" in str(e) or "read-only" in str(e):
                raise DatabaseReadOnly(f"database {self.path} is read-only for this user ({_user()}): "
                                       f"{_owner_hint(self.path)}") from None
            raise SchemaError(f"database {self.path} cannot be opened: {e}") from None
        self.db = sqlite_utils.Database(conn)
        self._depth = 0
        empty = self.version == 0 and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        if migrate or (empty and not readonly):
            self.migrate()
        elif problem := migrations.schema_problem(self.version, self.path):
            conn.close()
            raise SchemaError(problem)

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[int]:
        """Bring the schema to SCHEMA_VERSION; the numbers applied. Refuses a newer schema."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > migrations.SCHEMA_VERSION:
            self.conn.close()
            raise SchemaError(migrations.schema_problem(version, self.path))
        applied = []
        for number, statements in migrations.steps(version):
            with self.transaction():
                for statement in statements:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number}")
            applied.append(number)
        self.version = migrations.SCHEMA_VERSION
        return applied

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[None]:
        """BEGIN ... COMMIT; nested calls become savepoints so one bad message can roll back alone
        inside a batch. The outermost BEGIN, ROLLBACK and what ends it are the engine's own (`_begin`,
        `_undo`, `_end`: SQLite's here, PostgreSQL's in store/postgres.py).

        `durable=False` (outermost only) commits without waiting for the disk: the commit survives
        the process being killed, not a power cut until the next durable commit writes it out."""
        outer = self._depth == 0
        name = None if outer else f"sp{self._depth}"
        if outer:
            try:
                self._begin(durable)
            except BaseException:
                self._end(durable)
                raise
        else:
            self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            try:
                self._undo(name)
            finally:
                if outer:
                    self._end(durable)
            raise
        self._depth -= 1
        if not outer:
            self.conn.execute(f"RELEASE {name}")
            return
        try:
            self.conn.execute("COMMIT")
        finally:
            self._end(durable)

    def _begin(self, durable: bool) -> None:
        """IMMEDIATE (not sqlite-utils' plain BEGIN) so a CLI write beside the daemon waits for the
        lock instead of failing on upgrade; not durable: synchronous=NORMAL until `_end`."""
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("BEGIN IMMEDIATE")

    def _undo(self, savepoint: str | None) -> None:
        if not self.conn.in_transaction:
            return  # SQLite rolled back by itself (disk full, I/O error): the real error is raised
        if savepoint:
            self.conn.execute(f"ROLLBACK TO {savepoint}")
            self.conn.execute(f"RELEASE {savepoint}")
        else:
            self.conn.execute("ROLLBACK")

    def _end(self, durable: bool) -> None:
        if not durable:
            self.conn.execute("PRAGMA synchronous=FULL")

    # --- generic helpers -------------------------------------------------
    def one(self, sql: str, *params) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, *params):
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def insert(self, table: str, values: dict) -> int:
        if table in _PLAIN_INSERTS and all(type(v) in _PLAIN for v in values.values()):
            # the hot path (8 inserts per new complaint): plain SQL, >10x cheaper (module docstring)
            sql = _INSERTS.get((table, tuple(values)))
            if sql is None:
                sql = _INSERTS[(table, tuple(values))] = (
                    f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})")
            return self.conn.execute(sql, tuple(values.values())).lastrowid
        # sqlite-utils nests inside our open transaction as a savepoint
        return self.db[table].insert(values).last_pk

    def update(self, table: str, row_id: int, values: dict) -> None:
        if not values:
            return
        if table in _PLAIN_TABLES and all(type(v) in _PLAIN for v in values.values()):
            sets = ", ".join(f"{k} = ?" for k in values)
            cur = self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values.values(), row_id))
            if cur.rowcount == 0:
                raise sqlite_utils.db.NotFoundError(f"{table} {row_id}")
            return
        self.db[table].update(row_id, values)

    def has_table(self, name: str) -> bool:
        return bool(self.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name))

    # --- state ---------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM state WHERE key = ?", key)

    def set_state(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO state(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def clear_state(self, key: str) -> None:
        self.conn.execute("DELETE FROM state WHERE key = ?", (key,))

    # --- complaints ----------------------------------------------------------
    def complaint(self, ref: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM complaints WHERE ref = ?", ref.upper())

    def complaint_by_id(self, complaint_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM complaints WHERE id = ?", complaint_id)

    def due_complaints(self, now: datetime, limit: int = 1000) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM complaints WHERE next_due IS NOT NULL AND next_due <= ? "
                        "ORDER BY next_due LIMIT ?", iso(now), limit)

    def seen(self, message_id: str) -> bool:
        return self.one("SELECT 1 FROM processed WHERE message_id = ?", message_id) is not None

    def add_event(self, complaint_id: int | None, at: datetime, actor: str, kind: str, /, **detail) -> None:
        self.insert("events", {"complaint_id": complaint_id, "at": iso(at), "actor": actor,
                               "kind": kind, "detail": json.dumps(detail, ensure_ascii=False, default=str)})

    def timeline(self, complaint_id: int) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM events WHERE complaint_id = ? ORDER BY at, id", complaint_id)

    def messages(self, complaint_id: int) -> list[sqlite3.Row]:
        return self.all("SELECT id, message_id, direction, kind, at, from_addr, to_addrs, cc_addrs, subject, body, "
                        "reply_text, merged_from FROM messages WHERE complaint_id = ? ORDER BY at, id", complaint_id)

    def recent_auto_replies(self, address: str, since: datetime) -> int:
        """Automatic mail queued to one mailbox (any spelling of it) since then (staff-written
        relays do not count)."""
        return self.scalar("SELECT count(*) FROM outbox WHERE rcpt_key = ? AND audience = 'customer' "
                           "AND kind NOT IN ('relay', 'ask') AND created_at >= ?", mailbox_key(address), iso(since))

    def opened_since(self, address: str, since: datetime) -> int:
        """Complaints one mailbox (any spelling of it) opened since then."""
        return self.scalar("SELECT count(*) FROM complaints WHERE customer_key = ? AND opened_at >= ?",
                           mailbox_key(address), iso(since))

    def complaints_we_wrote_in(self, message_ids) -> list[sqlite3.Row]:
        """Complaints of the mail WE sent under these Message-IDs (a bounce or an answer to our mail)."""
        ids, marks = recent_ids(message_ids)
        if not ids:
            return []
        return self.all(f"SELECT DISTINCT c.* FROM outbox o JOIN complaints c ON c.id = o.complaint_id "
                        f"WHERE o.message_id IN ({marks})", *ids)
