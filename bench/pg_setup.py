"""Where bench.py's benchmarks keep their store: a SQLite file, or (`--store postgresql|both`) a
fresh database on a throwaway PostgreSQL cluster the bench starts itself (maildesk.testing.postgres,
in a temporary folder, stopped at the end). The bulk rows the benchmarks write straight into the
SQLite file are written here with COPY through PgStore's own connection.

The cluster runs with fsync and full-page writes on, unlike the tests' cluster: a commit costs what
it costs in production, as SQLite's commits do here (synchronous=FULL). psycopg is imported only
when PostgreSQL is used, so it does not weigh on the SQLite memory figures.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PASSWORD_ENV = "MAILDESK_BENCH_PG_PASSWORD"  # the daemon and CLI processes inherit it
STORE = "sqlite"  # or "postgresql": the store of the benchmark running now (bench.main sets it)
_cluster: Cluster | None = None


class Cluster:
    """One PostgreSQL server for the whole bench run."""

    def __init__(self):
        from maildesk.testing import postgres as pgtest
        pgtest.SETTINGS.update(fsync="on", full_page_writes="on", shared_buffers="128MB")
        self.root = Path(tempfile.mkdtemp(prefix="maildesk-bench-pg-"))
        self.root.chmod(0o755)  # as root the server runs as the postgres user
        self.server = pgtest.Postgres(self.root)
        self.server.start()
        os.environ[PASSWORD_ENV] = self.server.password

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def stop() -> None:
    """The cluster stopped and its folder removed, if one was started."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def new_database(path: Path):
    """Where a benchmark's store lives: the SQLite file `path`, or a fresh PostgreSQL database."""
    global _cluster
    if STORE == "sqlite":
        return path
    if _cluster is None:
        _cluster = Cluster()
    return _cluster.server.database()


def storage(target) -> dict:
    """The [storage] section of a config using `target` (from new_database)."""
    return {"database": target.name} if isinstance(target, Path) else {"url": target.url,
                                                                         "password_env": PASSWORD_ENV}


def forget(target) -> None:
    if isinstance(target, Path):
        target.unlink(missing_ok=True)
    else:
        target.server.drop_database(target.name)


def open_store(target, readonly: bool = False):
    """The store on `target` (the schema created on first open)."""
    if isinstance(target, Path):
        from maildesk.store.db import Store
        return Store(target, readonly=readonly)
    from maildesk.store.postgres import PgStore
    return PgStore(target.url, target.password, readonly=readonly)


def size_mb(target, store=None) -> float:
    if isinstance(target, Path):
        return target.stat().st_size / 1e6
    return store.scalar("SELECT pg_database_size(current_database())") / 1e6


@contextmanager
def bulk(target, *, analyze: bool = False, wal: bool = False):
    """write(table, columns, rows): bulk rows into a new store, its schema made first, in one
    transaction. SQLite: executemany, synchronous off; PostgreSQL: _pg_bulk."""
    if not isinstance(target, Path):
        with _pg_bulk(target) as write:
            yield write
        return
    open_store(target).close()
    conn = sqlite3.connect(target)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")

    def write(table: str, columns: tuple[str, ...], rows) -> None:
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                         rows)
    with conn:
        yield write
    if analyze:
        conn.execute("ANALYZE")
    conn.close()


@contextmanager
def _pg_bulk(db):
    """COPY; then the identity sequences moved past the ids given, and ANALYZE, as a database that
    grew by use would have its statistics."""
    store = open_store(db)
    tables = []
    try:
        with store.transaction():
            def write(table: str, columns: tuple[str, ...], rows) -> None:
                tables.append(table)
                with store.conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            yield write
            for table in dict.fromkeys(tables):
                if store.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = ? "
                                "AND column_name = 'id'", table):
                    store.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
        store.conn.execute("ANALYZE")
    finally:
        store.close()


def floor_commit_ms(db, raws: list[bytes]) -> float:
    """One INSERT + COMMIT per message on a plain psycopg connection: PostgreSQL's floor."""
    import psycopg
    with psycopg.connect(db.url, password=db.password) as conn:
        conn.execute("CREATE TABLE m (id BIGSERIAL PRIMARY KEY, raw BYTEA)")
        conn.commit()
        t0 = time.perf_counter()
        for raw in raws:
            conn.execute("INSERT INTO m (raw) VALUES (%s)", (raw,))
            conn.commit()
        return (time.perf_counter() - t0) / len(raws) * 1000
