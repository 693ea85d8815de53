"""The `quarantine` table as the quarantine folder's commands read it: a row per message
the daemon could not handle, found again by the SHA-256 of its bytes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.store.db import Store, from_iso


@dataclass(frozen=True)
class Held:
    id: int
    at: datetime
    status: str
    sender: str | None
    subject: str | None
    size: int
    reason: str


def _held(row) -> Held:
    return Held(row["id"], from_iso(row["at"]), row["status"], row["sender"], row["subject"], row["size"],
                row["reason"])


def by_sha256(store: Store, sha256: str) -> Held | None:
    row = store.one("SELECT * FROM quarantine WHERE sha256 = ?", sha256)
    return _held(row) if row is not None else None


def still_held(store: Store) -> list[Held]:
    """Rows not retried yet, oldest first."""
    return [_held(r) for r in store.all("SELECT * FROM quarantine WHERE status = 'held' ORDER BY at")]


def mark_retried(store: Store, row_id: int) -> None:
    store.update("quarantine", row_id, {"status": "retried"})
