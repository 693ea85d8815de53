"""Shared helpers for the tests: configs, raw mails, running the real CLI."""
from __future__ import annotations

import functools
import os
import time
import subprocess
import sys
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

from maildesk.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
# The project's own sample mails (tests/corpus/README.md), and the real-world ones kept beside the
# repository (CI has them; a fresh clone does not): tests over the latter are skipped, with this reason.
OWN_CORPUS = ROOT / "tests" / "corpus"
SHARED_CORPUS = Path(os.environ.get("MAILDESK_CORPUS") or ROOT.parent / "shared" / "corpus")
NO_SHARED_CORPUS = f"../shared/corpus not found: {SHARED_CORPUS} (clone beside shared/, or set MAILDESK_CORPUS)"



def own_corpus() -> list[Path]:
    return sorted(OWN_CORPUS.glob("*.eml"))


def shared_corpus() -> list[Path]:
    """Every file of ../shared/corpus; [] when it is not there (see NO_SHARED_CORPUS)."""
    return sorted(p for p in SHARED_CORPUS.rglob("*") if p.is_file()) if SHARED_CORPUS.is_dir() else []


def shared_params(files: list[Path]) -> list:
    """pytest parameters for files of the shared corpus: when it is missing, one test that is
    reported as skipped with the reason, never a silently empty set."""
    import pytest
    if SHARED_CORPUS.is_dir():
        return files
    return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SHARED_CORPUS), id="shared-corpus-missing")]
SUPPORT = "support@imolocale.test"
TEAMS = {
    "customer_service": ["cs@imolocale.test"],
    "resolution": ["resolution@imolocale.test"],
    "customer_experience": ["cx@imolocale.test"],
    "admins": ["admin@imolocale.test"],
}


def config_dict(imap_port: int = 1, smtp_port: int = 1, **sections) -> dict:
    data = {
        "mailbox": {"host": "127.0.0.1", "port": imap_port, "security": "none", "username": SUPPORT,
                    "password": "secret", "idle": True, "poll_seconds": 1,
                    "first_start_hours": 0},  # tests deliver back-dated mail; test_gmail_ready sets it
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "from_address": SUPPORT,
                 "from_name": "imolocale"},
        "storage": {"database": "maildesk.db"},
        "teams": dict(TEAMS),
        "policy": {"reference_prefix": "IMO", "timezone": "Europe/Paris"},
        "security": {"require_authenticated_staff": False},
        "digest": {"enabled": False},  # tests that move the clock past 08:00 would get one; test_admin turns it on
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
        data[name] = {k: v for k, v in data[name].items() if v is not None}  # None: leave the key out
    return data


def make_config(base_dir: Path = Path("/nonexistent"), **sections):
    return parse_config(config_dict(**sections), base_dir)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, data: dict) -> Path:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def mail(sender: str = "camille@example.fr", subject: str = "Colis jamais reçu",
         body: str = "Bonjour, ma commande n'est jamais arrivée. Pouvez-vous m'aider ?",
         name: str = "Camille Martin", to: str = SUPPORT, message_id: str | None = None,
         in_reply_to: str | None = None, references: str | None = None, headers: dict | None = None,
         date: datetime | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or f"<{os.urandom(8).hex()}@{sender.rpartition('@')[2]}>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


def maildesk(config: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI, as an admin runs it: its own process, forked from tests/zygote.py (imports
    already done), or started with `python -m maildesk` when MAILDESK_TEST_EXEC=1 or when the call
    changes what Python reads at start-up."""
    full_env = {**os.environ, **(env or {})}
    argv = ["--config", str(config), *args]
    if os.environ.get("MAILDESK_TEST_EXEC") != "1":
        zygote = _zygote()
        if zygote.can_run(full_env):
            return zygote.run(argv, full_env, str(ROOT), timeout)
    return subprocess.run([sys.executable, "-m", "maildesk", *argv],
                          capture_output=True, text=True, timeout=timeout, env=full_env, cwd=str(ROOT))


@functools.cache
def _zygote():
    """This test process's zygote, started at its first CLI call."""
    from tests.zygote import Zygote
    return Zygote()


def growth(fn, small, large) -> float:
    """How many times longer `fn(large)` takes than `fn(small)` (best of 3 each): the linear-time
    tests assert this ratio, never a duration. Linear work on 10 times the input gives ~10 on any
    machine, quadratic ~100; times under 1 ms count as 1 ms, so timer noise on a small input
    cannot fake a ratio."""
    def best(arg) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - start)
        return min(times)
    return best(large) / max(best(small), 1e-3)


LINEAR = 40  # the bound for `growth` on 10 times the input: room for a loaded machine's noise, not for n²
