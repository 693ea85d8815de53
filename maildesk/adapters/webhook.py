"""Admin decisions about sellers, POSTed as JSON to `[sellers] webhook_url`.

A decision is stored as a pending row in the same transaction that records
it; a clock job delivers it and retries with back-off until the receiver
answers 2xx. No write transaction is held while waiting on the network.
Each payload carries a unique `id` so a receiver can drop the rare
duplicate (a crash between its 2xx and our commit).
"""
from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from datetime import datetime

from maildesk.logs import event as log_event
from maildesk.core.sending import backoff  # the same rhythm as mail: 30 s doubling, at most an hour, never given up
from maildesk.store import webhooks
from maildesk.store.db import Store, StoreUnwell, iso

TIMEOUT = 10
PER_TICK = 20  # a dead receiver must not stall the daemon's loop for long


def post(url: str, payload: str, delivery_id: str) -> tuple[bool, str]:
    """(accepted?, what happened) for one POST."""
    request = urllib.request.Request(url, data=payload.encode(), method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "maildesk",
        "X-Maildesk-Delivery": delivery_id})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return 200 <= response.status < 300, f"HTTP {response.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        # HTTPException: a receiver answering something that is not HTTP (BadStatusLine), cut short...
        return False, f"{type(e).__name__}: {getattr(e, 'reason', e)}"[:300]


def deliver_due(store: Store, now: datetime, send=post) -> int:
    """The clock job: try every delivery that is due. Returns how many were accepted.
    One bad row (an exception) is logged, recorded as a failed attempt when it can be,
    and the others still go."""
    rows = webhooks.due(store, now, PER_TICK)
    accepted = 0
    for row in rows:
        try:
            ok, what = send(row.url, row.payload, row.delivery_id)
        except Exception as e:  # whatever the network or the receiver did: a failed attempt
            log_event("webhook_error", severity=40, exc_info=True, seller=row.seller_id, event=row.event)
            ok, what = False, f"{type(e).__name__}: {e}"[:300]
        try:
            accepted += _record(store, row, ok, what, now)
        except StoreUnwell:
            raise  # the store is unwell, not this row
        except Exception as e:
            log_event("webhook_record_failed", severity=40, exc_info=True, seller=row.seller_id,
                      delivery=row.delivery_id, error=f"{type(e).__name__}: {e}"[:200])
            _postpone(store, row, now)
    return accepted


def _postpone(store: Store, row: webhooks.Delivery, now: datetime) -> None:
    """A row that cannot even be recorded waits an hour, so it never blocks the rows behind it."""
    try:
        with store.transaction():
            webhooks.postpone(store, row.id, now + backoff(99))
    except StoreUnwell:
        raise
    except Exception:
        log_event("webhook_postpone_failed", severity=40, exc_info=True, delivery=row.delivery_id)


def _record(store: Store, row: webhooks.Delivery, ok: bool, what: str, now: datetime) -> int:
    attempts = row.attempts + 1
    retry = None if ok else now + backoff(attempts)
    with store.transaction():  # a savepoint when the caller holds a transaction: this row rolls back alone
        if ok:
            webhooks.delivered(store, row.id, attempts, now)
        else:
            webhooks.failed_attempt(store, row.id, attempts, what, retry)
    log_event("webhook_delivered" if ok else "webhook_failed", severity=20 if ok else 30,
              seller=row.seller_id, event=row.event, attempt=attempts, result=what,
              retry_at=None if ok else iso(retry))
    return int(ok)
