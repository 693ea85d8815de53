"""The `desk` fixture: a real Dovecot inbox, a real SMTP sink, a config file
pointing maildesk at both, and ways to drive maildesk as admins do."""
from __future__ import annotations

import logging
import sqlite3
import tempfile
from dataclasses import dataclass, field
from email import message_from_bytes, policy as email_policy
from pathlib import Path

import pytest

from maildesk.testing.dovecot import Dovecot
from maildesk.testing.smtp_sink import SmtpSink
from tests.support import SUPPORT, config_dict, maildesk, write_config


@dataclass
class Desk:
    dovecot: Dovecot
    sink: SmtpSink
    dir: Path
    overrides: dict = field(default_factory=dict)

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
        conn = sqlite3.connect(self.dir / "maildesk.db")
        conn.row_factory = sqlite3.Row
        return conn

    def rows(self, sql: str, *params) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute(sql, params).fetchall()

    def sent(self, to: str | None = None):
        msgs = [message_from_bytes(c.data, policy=email_policy.default) for c in self.sink.messages]
        return [m for m in msgs if to is None or to in str(m["To"])]

    def folder(self, name: str) -> int:
        return self.dovecot.count(name)


def body(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content().replace("\r\n", "\n") if part else ""


@pytest.fixture
def desk(dovecot, smtp_sink) -> Desk:
    d = Desk(dovecot, smtp_sink, Path(tempfile.mkdtemp(prefix="maildesk-desk-")))
    d.write_config()
    return d


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
