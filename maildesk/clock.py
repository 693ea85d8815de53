"""The shell's one source of the time. The core never reads a clock: it is handed `now`.
Kept free of heavy imports so read-only commands (`show`, `list`) stay light."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Clock:
    """Handed out by the composition root (`App.clock`); freezegun moves it in tests."""

    def now(self) -> datetime:
        return utcnow()
