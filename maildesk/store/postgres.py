"""The store on PostgreSQL ([storage] url): the same Store, its queries spelled for PostgreSQL by
`store/dialect.py`, on a connection from a small psycopg pool.

Writes are serialised as SQLite serialises them: each write transaction first takes one
transaction-level advisory lock, so the read-modify-write steps written for SQLite's single writer
(a CLI command beside the daemon) stay correct under READ COMMITTED. The daemon that is active
(store/leader.py) also checks its fencing epoch inside that lock: once a standby has taken over, no
transaction of the old active one can commit.

A connection PostgreSQL dropped (a restart, a network cut) is replaced from the pool at the next
transaction; the one in flight fails as `StoreUnwell`, and what it wrote is rolled back with it.
"""
from __future__ import annotations

import json
import logging
import socket
import sqlite3
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout

from maildesk.store import migrations, schema_pg
from maildesk.store.db import Fenced, NoSchemaYet, SchemaError, Store, StoreUnreachable, StoreUnwell, safe_url
from maildesk.store.dialect import to_postgres

# the pool's own warnings (a dropped connection discarded) would print beside maildesk's log lines,
# which say it already (database_busy, database_unreachable)
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

WRITER_LOCK = 0x6D61_696C_6465_736B  # "maildesk": every write transaction holds it (pg_advisory_xact_lock)
_NUMERIC = 1700  # sum() and avg() come back as numeric: handed over as int or float, as SQLite does


class PgUnwell(StoreUnwell):
    """psycopg's OperationalError (connection lost, server restarting, pool empty) under the store's name."""


class PgIntegrityError(sqlite3.IntegrityError):
    """A row broke a constraint (UNIQUE, NOT NULL, a foreign key): that row's fault, as on SQLite."""


class PgDataError(sqlite3.DataError):
    """A value PostgreSQL refuses for its column (too long, NUL in text): that row's fault."""


@contextmanager
def _store_errors() -> Iterator[None]:
    """psycopg's errors as the store's own (module docstring of store/db.py): a caller names one set."""
    try:
        yield
    except psycopg.IntegrityError as e:
        raise PgIntegrityError(" ".join(str(e).split())) from e
    except psycopg.DataError as e:
        raise PgDataError(" ".join(str(e).split())) from e
    except psycopg.OperationalError as e:
        raise PgUnwell(" ".join(str(e).split()) or type(e).__name__) from e


class Row:
    """What sqlite3.Row offers the store's callers: by index, by name, keys(), dict(row), unpacking."""
    __slots__ = ("_values", "_index")

    def __init__(self, values: tuple, index: dict[str, int]):
        self._values = values
        self._index = index

    def __getitem__(self, key):
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({ {k: self[k] for k in self._index}!r})"


def _row_factory(cursor):
    names = [c.name for c in cursor.description or ()]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # a name twice (SELECT c.*, o.*): the first, as sqlite3.Row
    numeric = [i for i, c in enumerate(cursor.description or ()) if c.type_code == _NUMERIC]

    def make(values):
        if numeric:
            values = list(values)
            for i in numeric:
                if isinstance(values[i], Decimal):
                    values[i] = int(values[i]) if values[i] == values[i].to_integral_value() else float(values[i])
        return Row(tuple(values), index)
    return make


def _param(value):
    """SQLite's 0/1 for a bool; a NUL in text (PostgreSQL's text cannot hold one) as U+FFFD."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _params(params):
    if isinstance(params, dict):
        return {k: _param(v) for k, v in params.items()}
    return tuple(_param(v) for v in params)


class Connection:
    """The sqlite3.Connection surface the store modules use, over a pooled psycopg connection."""

    def __init__(self, pool: ConnectionPool):
        self.pool = pool
        self.raw: psycopg.Connection = pool.getconn()
        self.in_store_transaction = False  # set by PgStore.transaction: never renewed mid-transaction

    def execute(self, sql: str, params=()) -> psycopg.Cursor:
        if not self.in_store_transaction and self.broken:
            self.renew()  # a read between transactions, after PostgreSQL dropped us
        cur = self.raw.cursor()
        with _store_errors():
            cur.execute(to_postgres(sql), _params(params))
        return cur

    def executemany(self, sql: str, seq) -> psycopg.Cursor:
        cur = self.raw.cursor()
        with _store_errors():
            cur.executemany(to_postgres(sql), [_params(p) for p in seq])
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    @property
    def broken(self) -> bool:
        return self.raw.broken or self.raw.closed

    def renew(self) -> None:
        """A fresh connection in place of one PostgreSQL dropped."""
        self.pool.putconn(self.raw)
        with _store_errors():
            self.raw = self.pool.getconn(timeout=5)

    def close(self) -> None:
        self.pool.putconn(self.raw)
        self.pool.close()


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET application_name = 'maildesk'")


def open_pool(url: str, password: str | None, *, readonly: bool = False, size: int = 2,
              wait: float = 10.0) -> ConnectionPool:
    """A small pool, open and tried; StoreUnreachable in one line when no connection can be had.
    One direct connection first, so that a refusal (down, wrong password) is told at once, in the
    server's own words, rather than after the pool's wait."""
    options = "-c default_transaction_read_only=on" if readonly else None
    kwargs = {"autocommit": True, "row_factory": _row_factory, "password": password, "options": options,
              "connect_timeout": max(1, int(wait)), "application_name": f"maildesk {socket.gethostname()}"}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        psycopg.connect(url, **kwargs).close()
    except psycopg.Error as e:
        raise StoreUnreachable(f"cannot connect to PostgreSQL at {safe_url(url)}: {' '.join(str(e).split())[:300]}") \
            from None
    pool = ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=size, open=False, configure=_configure,
                          name="maildesk")
    try:
        pool.open(wait=True, timeout=wait)
    except PoolTimeout:
        pool.close()
        raise StoreUnreachable(f"cannot connect to PostgreSQL at {safe_url(url)}: no connection within {wait:g} s") \
            from None
    return pool


class PgStore(Store):
    """The Store on PostgreSQL: same methods, same transactions, same schema version."""
    kind = "postgresql"

    def __init__(self, url: str, password: str | None = None, *, readonly: bool = False, migrate: bool = False,
                 wait: float = 10.0):
        self.url = url
        self.path = None
        self.where = safe_url(url)
        self.readonly = readonly
        self.fence_epoch: int | None = None  # set by store/leader.py while this process is active
        self.conn = Connection(open_pool(url, password, readonly=readonly, wait=wait))
        self.db = None
        self._depth = 0
        # Emptiness first, then the version: another process's first migration commits its tables and
        # its version together, so read in this order an empty database cannot turn into "schema 0".
        empty = self._empty()
        self.version = self._version()
        if self.version == 0 and readonly and empty:
            self.close()
            raise NoSchemaYet(f"no maildesk schema in {self.where} yet: the daemon creates it on its first "
                              f"start (or run `maildesk migrate`)")
        if migrate or (self.version == 0 and not readonly and empty):
            self.migrate()
        elif problem := migrations.schema_problem(self.version, self.where):
            self.close()
            raise SchemaError(problem)

    def _version(self) -> int:
        if self.scalar("SELECT to_regclass('meta') IS NOT NULL") is False:
            return 0
        return int(self.scalar("SELECT value FROM meta WHERE key = 'schema_version'") or 0)

    def _empty(self) -> bool:
        return not self.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[int]:
        """Bring the schema to SCHEMA_VERSION; the numbers applied. Two processes starting on an empty
        database at once: the second waits for the first's lock, then finds the schema done."""
        applied = []
        with self.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%d)" % (WRITER_LOCK + 1))
            version = self._version()
            if version > migrations.SCHEMA_VERSION:
                raise SchemaError(migrations.schema_problem(version, self.where))
            for number in sorted(n for n in schema_pg.STEPS if n > version):
                for statement in schema_pg.STEPS[number]:
                    self.conn.raw.execute(statement)
                self.conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?) ON CONFLICT(key) "
                                  "DO UPDATE SET value = excluded.value", (str(number),))
                applied.append(number)
        self.version = migrations.SCHEMA_VERSION
        return applied

    def _begin(self, durable: bool) -> None:
        """BEGIN + the writer lock (+ the fencing check); the savepoints and COMMIT are Store's."""
        self.conn.execute("BEGIN")  # on a fresh connection if PostgreSQL dropped the last one
        self.conn.in_store_transaction = True
        try:
            if self.fence_epoch is not None:
                epoch = self.conn.execute("SELECT pg_advisory_xact_lock(?), (SELECT value FROM meta "
                                          "WHERE key = 'leader_epoch')", (WRITER_LOCK,)).fetchone()[1]
                if int(epoch) != self.fence_epoch:
                    raise Fenced(f"another daemon is active (epoch {epoch}, this one held {self.fence_epoch})")
            elif not self.readonly:
                self.conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK,))
            if not durable:
                self.conn.execute("SET LOCAL synchronous_commit = off")
        except BaseException:
            self._rollback_quietly()
            raise

    def _undo(self, savepoint: str | None) -> None:
        if savepoint is None:
            self._rollback_quietly()
        elif not self.conn.broken:
            self.conn.execute(f"ROLLBACK TO {savepoint}")
            self.conn.execute(f"RELEASE {savepoint}")

    def _end(self, durable: bool) -> None:
        self.conn.in_store_transaction = False  # synchronous_commit was SET LOCAL: gone with the transaction

    def _rollback_quietly(self) -> None:
        """ROLLBACK, unless the connection is gone (then the server rolled it back itself)."""
        if not self.conn.broken:
            try:
                self.conn.execute("ROLLBACK")
            except StoreUnwell:
                pass

    def insert(self, table: str, values: dict) -> int | str | None:
        values = {k: json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for k, v in values.items()}
        returning = "" if table in _NO_ID else " RETURNING id"
        row = self.conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                                f"({', '.join('?' * len(values))}){returning}", tuple(values.values()))
        return row.fetchone()[0] if returning else None

    def update(self, table: str, row_id, values: dict) -> None:
        if not values:
            return
        values = {k: json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for k, v in values.items()}
        sets = ", ".join(f"{k} = ?" for k in values)
        cur = self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values.values(), row_id))
        if cur.rowcount == 0:
            raise LookupError(f"{table} {row_id} not found")

    def has_table(self, name: str) -> bool:
        return bool(self.scalar("SELECT to_regclass(?) IS NOT NULL", name))


_NO_ID = frozenset({"processed", "state", "sent_elsewhere", "files", "meta"})
