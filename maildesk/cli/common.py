"""What every admin command shares: JSON for scripts, times in the admins' zone, whole-number
arguments, and a progress bar that shows on a terminal only."""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime

from tqdm import tqdm

from maildesk.cli.display import dumps
from maildesk.core import timefmt
from maildesk.service import digest


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def print_json(doc) -> None:
    print(dumps(doc, default=_plain))


def local(value: datetime | None, tz) -> str:
    return timefmt.local(value, tz)


def ago(seconds: float) -> str:
    return digest.duration(max(seconds, 0), "en") + " ago"


def number(text: str) -> int:
    """An argparse type: a whole number SQLite can hold (a row id, a UID, a limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range")
    return value


def progress(items, what: str):
    """A bar on a terminal, nothing in a pipe or a log."""
    return tqdm(items, desc=what, unit="", disable=not sys.stderr.isatty(), leave=False)


def operator() -> str:
    """Who runs the command, for the audit trail: the login name."""
    import getpass
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"
