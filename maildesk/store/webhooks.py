"""The `seller_webhooks` table: each admin decision to POST, pending until the receiver
answers 2xx. Writes expect the caller's open `Store.transaction()`."""
from __future__ import annotations

import uuid
import json
from dataclasses import dataclass
from datetime import datetime

from maildesk.store.db import Store, iso


@dataclass(frozen=True)
class Delivery:
    id: int
    delivery_id: str
    seller_id: str
    event: str
    url: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    delivered_at: str | None


def _delivery(row) -> Delivery:
    return Delivery(**{k: row[k] for k in Delivery.__dataclass_fields__})


def add(store: Store, url: str, seller_id: str, event: str, payload: dict, now: datetime) -> str:
    """A pending delivery of `payload` (with its unique `id` added); its delivery id."""
    delivery_id = str(uuid.uuid4())
    body = {"id": delivery_id, "event": event, **payload}
    store.insert("seller_webhooks", {
        "delivery_id": delivery_id, "seller_id": seller_id, "event": event, "url": url,
        "payload": json.dumps(body, ensure_ascii=False, default=str), "status": "pending", "attempts": 0,
        "next_attempt_at": iso(now), "created_at": iso(now)})
    return delivery_id


def pending(store: Store, seller_id: str | None = None) -> list[Delivery]:
    sql = "SELECT * FROM seller_webhooks WHERE status = 'pending'"
    if seller_id:
        return [_delivery(r) for r in store.all(sql + " AND seller_id = ? ORDER BY id", seller_id)]
    return [_delivery(r) for r in store.all(sql + " ORDER BY id")]


def due(store: Store, now: datetime, limit: int) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, the longest waiting first."""
    return [_delivery(r) for r in store.all("SELECT * FROM seller_webhooks WHERE status = 'pending' "
                                            "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                                            iso(now), limit)]


def postpone(store: Store, row_id: int, until: datetime) -> None:
    store.conn.execute("UPDATE seller_webhooks SET next_attempt_at = ? WHERE id = ?", (iso(until), row_id))


def delivered(store: Store, row_id: int, attempts: int, at: datetime) -> None:
    store.update("seller_webhooks", row_id, {"status": "delivered", "attempts": attempts,
                                             "delivered_at": iso(at), "last_error": None})


def failed_attempt(store: Store, row_id: int, attempts: int, error: str, retry_at: datetime) -> None:
    store.update("seller_webhooks", row_id, {"attempts": attempts, "last_error": error,
                                             "next_attempt_at": iso(retry_at)})
