"""What the daemon keeps about the inbox between passes: messages set aside (quarantine),
messages the server refuses to serve, the first start's cutoff, IMAP logins per day, and
the look-ups that tell whether a mail found in spam is surely ours."""
from __future__ import annotations

import json
from datetime import datetime

from maildesk.store.db import Store, iso

UNFETCHABLE_TRIES = 3  # passes a message the server refuses is tried before it is left alone


def state_json(store: Store, key: str, default):
    """A state value stored as JSON; `default` when unset or empty."""
    return json.loads(store.get_state(key) or "null") or default


def set_state_json(store: Store, key: str, value) -> None:
    store.set_state(key, json.dumps(value))


def quarantine(store: Store, at: datetime, folder: str, message_id: str | None, sha256: str,
               sender: str | None, subject: str | None, size: int, reason: str) -> None:
    """One message set aside, keyed by its hash: set aside again, it is held again with the new reason."""
    store.conn.execute(
        "INSERT INTO quarantine (at, folder, message_id, sha256, sender, subject, size, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET at = excluded.at, "
        "reason = excluded.reason, status = 'held'",
        (iso(at), folder, message_id, sha256, sender, subject, size, reason[:500]))


def knows_message(store: Store, message_id: str) -> bool:
    return store.one("SELECT 1 FROM messages WHERE message_id = ?", message_id) is not None


def knows_sender(store: Store, address: str) -> bool:
    """A customer (as written, or in lower case) or a seller we know by this address."""
    lowered = address.lower()
    return (store.one("SELECT 1 FROM complaints WHERE customer_addr IN (?, ?) LIMIT 1", address, lowered) is not None
            or store.one("SELECT 1 FROM sellers WHERE lower(address) = ? LIMIT 1", lowered) is not None)


def count_login(store: Store, now: datetime) -> None:
    """One more IMAP login today (Gmail locks an account out after too many). Opens its transaction."""
    today = now.date().isoformat()
    counted = state_json(store, "imap_logins", {})
    if counted.get("day") != today:
        counted = {"day": today, "today": 0, "total": counted.get("total", 0)}
    counted.update(today=counted["today"] + 1, total=counted["total"] + 1, last=iso(now))
    with store.transaction():
        set_state_json(store, "imap_logins", counted)


def uid_ranges(uids: list[int]) -> str:
    """Sorted UIDs as "1-300,305": a few bytes for years of mail."""
    out: list[str] = []
    for u in sorted(uids):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == u - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{u}"
        elif out and "-" not in out[-1] and int(out[-1]) == u - 1:
            out[-1] = f"{out[-1]}-{u}"
        else:
            out.append(str(u))
    return ",".join(out)


def expand_ranges(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out
