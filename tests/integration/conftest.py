"""The `desk` fixture: a real Dovecot inbox, a real SMTP sink, a config file
pointing maildesk at both, and ways to drive maildesk as admins do.

MAILDESK_TEST_STORE=postgresql runs the same tests with the desk's store on a real PostgreSQL
database (a fresh one per test, fixture `pg_url`); tests marked `sqlite_only` (the database file
itself: its rights, backups, corruption) are left out of that run."""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy as email_policy
from pathlib import Path

import pytest

from maildesk.testing.dovecot import Dovecot
from maildesk.testing.postgres import PgDatabase
from maildesk.testing.smtp_sink import SmtpSink
from tests.support import SUPPORT, config_dict, maildesk, write_config


@dataclass
class Desk:
    dovecot: Dovecot
    sink: SmtpSink
    dir: Path
    overrides: dict = field(default_factory=dict)
    pg: PgDatabase | None = None  # the desk's store is this PostgreSQL database, not maildesk.db

    @property
    def config(self) -> Path:
        return self.dir / "maildesk.toml"

    def write_config(self, **sections) -> Path:
        for name, values in sections.items():
            self.overrides.setdefault(name, {}).update(values)
        return write_config(self.config, config_dict(self.dovecot.port, self.sink.port, **self.overrides))

    def deliver(self, raw: bytes, folder: str = "INBOX", msg_time=None) -> None:
        self.dovecot.append(raw, folder=folder, msg_time=msg_time)

    def cli(self, *args: str, env: dict | None = None):
        return maildesk(self.config, *args, env=env)

    def cli_here(self, *args: str) -> tuple[int, str]:
        """The real CLI in this process, so freezegun's frozen time applies to it."""
        import contextlib, io
        from maildesk.cli.main import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["--config", str(self.config), *args])
        return code, out.getvalue()

    def once(self, env: dict | None = None):
        result = self.cli("once", env=env)
        assert result.returncode == 0, result.stderr
        return result

    def app(self, **hooks):
        """The composition root on this desk's config; tests hand their hooks in here
        (`smtp_client=`, `part_fetch=`), never patch the adapters."""
        from maildesk.app import App
        from maildesk.config import load
        return App(load(self.config), **hooks)

    def run_once(self, app=None, **hooks) -> int:
        """The daemon's `once` in this process (so freezegun's time and the hooks apply),
        on `app` or on a new one built with `hooks`; the app is closed afterwards."""
        from maildesk.daemon import Daemon
        app = app or self.app(**hooks)
        try:
            return Daemon(app).once()
        finally:
            app.close()

    def db(self) -> sqlite3.Connection:
        """The desk's database as a test reads it; on PostgreSQL the same SQL, spelled for it."""
        if self.pg:
            return PgReader(self.pg)
        conn = sqlite3.connect(self.dir / "maildesk.db")
        conn.row_factory = sqlite3.Row
        return conn

    def rows(self, sql: str, *params) -> list[sqlite3.Row]:
        with self.db() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []  # an UPDATE: no rows

    def sent(self, to: str | None = None):
        msgs = [message_from_bytes(c.data, policy=email_policy.default) for c in self.sink.messages]
        return [m for m in msgs if to is None or to in str(m["To"])]

    def folder(self, name: str) -> int:
        return self.dovecot.count(name)


class PgReader:
    """What the tests do with a sqlite3 connection (execute, fetch, `with`), on PostgreSQL."""

    def __init__(self, db: PgDatabase):
        import psycopg
        from maildesk.store.postgres import _row_factory
        self.conn = psycopg.connect(db.url, password=db.password, autocommit=True, row_factory=_row_factory)

    def execute(self, sql: str, params=()):
        from maildesk.store.dialect import to_postgres
        from maildesk.store.postgres import _params
        cur = self.conn.cursor()
        cur.execute(to_postgres(sql), _params(params))
        return cur

    def commit(self) -> None:
        pass  # autocommit

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()


STORE = os.environ.get("MAILDESK_TEST_STORE", "sqlite")
PG_PASSWORD_ENV = "MAILDESK_TEST_PG_PASSWORD"


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL pass keeps the tests whose store follows MAILDESK_TEST_STORE (those using the
    `storage` fixture, the `desk` among them). It deselects, not skips, the rest (the SQLite pass
    runs them): tests that never open a store or open SQLite of their own (one run would repeat the
    other), tests of the SQLite file itself (`sqlite_only`), and those on PostgreSQL in every run
    anyway (`pg_always`)."""
    if STORE != "postgresql":
        return
    kept = [item for item in items if "storage" in getattr(item, "fixturenames", ())
            and not (item.get_closest_marker("sqlite_only") or item.get_closest_marker("pg_always"))]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def body(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content().replace("\r\n", "\n") if part else ""


@pytest.fixture
def storage(request) -> dict:
    """The `[storage]` keys of a test's config: {} (maildesk.db beside the config) or, with
    MAILDESK_TEST_STORE=postgresql, a fresh PostgreSQL database (its PgDatabase under "pg")."""
    if STORE != "postgresql":
        return {}
    db = request.getfixturevalue("pg_url")
    os.environ[PG_PASSWORD_ENV] = db.password  # one password per worker's cluster; subprocesses inherit it
    return {"url": db.url, "password_env": PG_PASSWORD_ENV, "pg": db}


def config_storage(storage: dict) -> dict:
    return {k: v for k, v in storage.items() if k != "pg"}


@pytest.fixture
def desk(dovecot, smtp_sink, storage) -> Iterator[Desk]:
    d = Desk(dovecot, smtp_sink, Path(tempfile.mkdtemp(prefix="maildesk-desk-")), pg=storage.get("pg"))
    if storage:
        d.overrides["storage"] = config_storage(storage)
    d.write_config()
    yield d
    shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def support() -> str:
    return SUPPORT


@pytest.fixture
def events():
    """The log records maildesk emits (its logger does not propagate to caplog)."""
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("maildesk")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(old)
