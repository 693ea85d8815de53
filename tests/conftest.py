"""Shared fixtures: a real Dovecot and a capturing SMTP sink, both on loopback and both fast (~30 ms)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from maildesk.testing.dovecot import Dovecot, find_dovecot
from maildesk.testing.smtp_sink import SmtpSink


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
