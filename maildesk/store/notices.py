"""The `notices` table: each occurrence of an admin alert or flood notice, and whether
(and in which mail) it went out. Writes expect the caller's open `Store.transaction()`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from maildesk.store.db import Store, from_iso, iso


@dataclass(frozen=True)
class Waiting:
    """Notices of one kind and key not mailed yet, and since when the oldest waits."""
    kind: str
    key: str
    oldest: datetime


@dataclass(frozen=True)
class Batch:
    """What one coalesced mail covers: how many waited, since when, the newest of them
    (oldest first, each its stored context with `at`), and the last id it covers."""
    count: int
    since: datetime
    last_id: int
    shown: list[dict]


def add(store: Store, kind: str, key: str, at: datetime, complaint_id: int | None, context: dict) -> None:
    store.insert("notices", {"kind": kind, "key": key, "at": iso(at), "complaint_id": complaint_id,
                             "context": json.dumps(context, ensure_ascii=False, default=str)})


def any_since(store: Store, kind: str, key: str, since: datetime) -> bool:
    """Was there a notice of this kind and key since then (mailed or waiting)?"""
    return store.one("SELECT 1 FROM notices WHERE kind = ? AND key = ? AND at >= ? LIMIT 1",
                     kind, key, iso(since)) is not None


def waiting(store: Store) -> list[Waiting]:
    return [Waiting(r["kind"], r["key"], from_iso(r["oldest"])) for r in store.all(
        "SELECT kind, key, min(at) AS oldest FROM notices WHERE mailed_at IS NULL GROUP BY kind, key")]


def last_mailed(store: Store, kind: str, key: str) -> datetime | None:
    return from_iso(store.scalar("SELECT max(mailed_at) FROM notices WHERE kind = ? AND key = ? "
                                 "AND mailed_at IS NOT NULL", kind, key))


_WAITING = "FROM notices WHERE kind = ? AND key = ? AND mailed_at IS NULL"


def batch(store: Store, kind: str, key: str, newest: int) -> Batch:
    """The waiting notices of this kind and key (there is at least one)."""
    count, since, last_id = store.one(f"SELECT count(*), min(at), max(id) {_WAITING}", kind, key)
    rows = store.all(f"SELECT at, context {_WAITING} ORDER BY id DESC LIMIT ?", kind, key, newest)
    return Batch(count, from_iso(since), last_id,
                 [{**json.loads(r["context"]), "at": from_iso(r["at"])} for r in reversed(rows)])


def mark_mailed(store: Store, kind: str, key: str, up_to_id: int, at: datetime, message_id: str | None) -> None:
    store.conn.execute("UPDATE notices SET mailed_at = ?, message_id = ? WHERE kind = ? AND key = ? "
                       "AND mailed_at IS NULL AND id <= ?", (iso(at), message_id, kind, key, up_to_id))
