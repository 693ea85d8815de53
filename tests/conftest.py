"""Shared fixtures: a real Dovecot and a capturing SMTP sink, both on loopback and both fast (~30 ms),
and a real PostgreSQL cluster per test worker with a fresh database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import freezegun
import pytest

from maildesk.testing.dovecot import Dovecot, find_dovecot
from maildesk.testing.postgres import PgDatabase, Postgres, find_postgres
from maildesk.testing.smtp_sink import SmtpSink

# A frozen clock is maildesk's, not the PostgreSQL driver's: psycopg's pool times its housekeeping
# (and its close, which otherwise waits out a 5 s join on every App.close) on the real clock.
freezegun.configure(extend_ignore_list=["psycopg", "psycopg_pool"])

SCRATCH_FREE = 4 << 30  # RAM-backed scratch only where it leaves this much room


def _scratch_base() -> str:
    """Where the tests' files go: MAILDESK_TEST_TMP, else /dev/shm when it is a roomy tmpfs, else
    the system's temporary folder. The servers' and databases' files are written thousands of
    times a run; on this project's 2-core machine a database copy took 0.22 s on disk and 0.02 s
    in RAM. A small /dev/shm (Docker gives 64 MB) is left alone."""
    chosen = os.environ.get("MAILDESK_TEST_TMP")
    if chosen:
        return chosen
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= SCRATCH_FREE and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


def pytest_configure(config) -> None:
    """One scratch folder per test process (0755: Dovecot and PostgreSQL drop to other users),
    made every temporary folder's parent here and in the processes the tests start, and removed
    at the end, so a run leaves nothing behind."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    scratch = tempfile.mkdtemp(prefix=f"md-{worker}-", dir=_scratch_base())
    os.chmod(scratch, 0o755)
    tempfile.tempdir = os.environ["TMPDIR"] = scratch
    config._maildesk_scratch = scratch


def pytest_unconfigure(config) -> None:
    scratch = getattr(config, "_maildesk_scratch", None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_binary() -> str:
    """Fail (never skip) when Dovecot is missing: CI installs it, so a skip would hide lost coverage."""
    try:
        path = find_dovecot()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("2.3."):
        pytest.fail(
            f"maildesk.testing.dovecot writes a Dovecot 2.3 config but {path} is {version!r} "
            "(2.4 changed the config syntax)",
            pytrace=False,
        )
    return path


@pytest.fixture
def dovecot_factory(dovecot_binary: str) -> Iterator[Callable[..., Dovecot]]:
    """Start Dovecots with custom users / special_use, each in its own 0755 temp folder.

    Not pytest's tmp_path: it is 0700, and as root Dovecot drops to a user that cannot traverse it.
    """
    made: list[Dovecot] = []

    def make(**kwargs) -> Dovecot:
        root = Path(tempfile.mkdtemp(prefix="maildesk-dovecot-"))
        root.chmod(0o755)
        dovecot = Dovecot(root, **kwargs)
        made.append(dovecot)
        dovecot.start()
        return dovecot

    yield make
    for dovecot in made:
        dovecot.stop()
        shutil.rmtree(dovecot.root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    """A fresh, running Dovecot with support@imolocale.test / secret and a Sent folder."""
    return dovecot_factory()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A running SMTP sink that accepts everything and delivers nowhere."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One cluster per pytest-xdist worker (initdb ~0.7 s once), removed at the end.

    Fails (never skips) when PostgreSQL is missing: CI installs it, so a skip would hide lost coverage.
    A 0755 temp folder, not tmp_path: as root the server runs as the postgres user.
    """
    try:
        find_postgres()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="maildesk-pg-"))
    root.chmod(0o755)
    server = Postgres(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[PgDatabase]:
    """A fresh, empty database (unaccent already in it) owned by the maildesk role; dropped after the test."""
    if not postgres.is_running:  # a test that killed or stopped the server leaves it for the next
        postgres.start()
    db = postgres.database()
    yield db
    if not postgres.is_running:
        postgres.start()
    postgres.drop_database(db.name)
