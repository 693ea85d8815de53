"""Retention in SQL (issue 17): which complaints and sellers wait to be anonymised by the clock,
oldest first, and how many it anonymised in a window (the digest). core/retention.py decides
what is due; these queries only bring candidates by date.

A complaint's settling time is `COALESCE(closed_at, resolved_at, first_contact)`; its last
moment is the later of that and its last message. The candidates come through the partial
index `complaints_retention` (migration 14), whose WHERE is spelled here term for term: SQLite
uses a partial index only for a query that says the same, so anonymised complaints (years of
them, eventually) are never read again.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime

from maildesk.core import privacy
from maildesk.store.db import Store, iso

SETTLED = "COALESCE(c.closed_at, c.resolved_at, c.first_contact)"
WAITING = "c.anonymised_at IS NULL AND c.status IN ('closed', 'merged', 'imported')"
LAST = (f"max({SETTLED}, COALESCE((SELECT max(m.at) FROM messages m WHERE m.complaint_id = c.id), ''))")
LIVE = ("open", "waiting_customer", "resolved")  # a seller named by one of these is kept


def due_complaints(store: Store, cutoff: datetime, limit: int) -> list[sqlite3.Row]:
    """Up to `limit` complaints settled at or before `cutoff` and quiet since (no message after
    it), not yet anonymised, oldest first: (id, ref, status, last)."""
    return store.all(f"SELECT id, ref, status, last FROM (SELECT c.id, c.ref, c.status, {LAST} AS last, "
                     f"{SETTLED} AS settled FROM complaints c INDEXED BY complaints_retention WHERE {WAITING} AND {SETTLED} <= ? "
                     f"ORDER BY {SETTLED}) AS due WHERE last <= ? LIMIT ?", iso(cutoff), iso(cutoff), limit)


def waiting(store: Store, complaint_id: int) -> sqlite3.Row | None:
    """A candidate's status and last moment as they are now; None once anonymised."""
    return store.one(f"SELECT status, {LAST} AS last FROM complaints c WHERE id = ? AND anonymised_at IS NULL",
                     complaint_id)


def oldest_waiting(store: Store) -> str | None:
    """The last moment of the complaint that settled first among those not yet anonymised."""
    row = store.one(f"SELECT {LAST} AS last FROM complaints c INDEXED BY complaints_retention WHERE {WAITING} ORDER BY {SETTLED} LIMIT 1")
    return row["last"] if row else None


def anonymised_between(store: Store, since: datetime, until: datetime, by: str) -> dict[str, int]:
    """How many complaints and sellers `by` (the clock) anonymised in the window."""
    return {"complaints": store.scalar("SELECT count(*) FROM events WHERE kind = 'anonymised' AND at > ? AND at <= ? "
                                       "AND actor = ?", iso(since), iso(until), by),
            "sellers": store.scalar("SELECT count(*) FROM sellers WHERE anonymised_at > ? AND anonymised_at <= ?",
                                    iso(since), iso(until)) if store.has_table("sellers") else 0}


def seller_candidates(store: Store) -> list[sqlite3.Row]:
    """Terminated sellers not yet anonymised, with their last moment (the status change, the
    registry's update, the last event on their record) and how many live complaints name them.
    Few rows: sellers are a registry, terminated ones fewer still."""
    marks = ",".join("?" * len(LIVE))
    return store.all(f"SELECT s.id, s.status, max(COALESCE(s.status_at, ''), s.updated_at, COALESCE("
                     f"(SELECT max(e.at) FROM seller_events e WHERE e.seller_id = s.id), '')) AS last, "
                     f"(SELECT count(*) FROM complaints c WHERE c.seller_id = s.id AND c.status IN ({marks})) "
                     f"+ (SELECT count(*) FROM outreach o WHERE o.seller_id = s.id AND o.status = 'waiting') "
                     f"AS live FROM sellers s WHERE s.status = 'terminated' AND s.anonymised_at IS NULL "
                     f"ORDER BY last", *LIVE)


def anonymise_seller_row(store: Store, seller_id: str, now: datetime, by: str) -> str | None:
    """The registry row loses name, address and phone (strikes, status and counts stay); returns
    the address it had, None if already done. Inside the caller's transaction."""
    row = store.one("SELECT address, anonymised_at FROM sellers WHERE id = ?", seller_id)
    if row is None or row["anonymised_at"]:
        return None
    gone = f"{seller_id.lower()}@{privacy.ERASED_DOMAIN}"
    store.conn.execute("UPDATE sellers SET shop_name = ?, address = ?, phone = NULL, status_reason = ?, "
                       "anonymised_at = ?, updated_at = ? WHERE id = ?",
                       (privacy.ERASED, gone, privacy.ERASED, iso(now), iso(now), seller_id))
    for r in store.all("SELECT id, detail FROM seller_events WHERE seller_id = ?", seller_id):
        clean = privacy.scrub_detail(r["detail"])
        if clean != r["detail"]:
            store.conn.execute("UPDATE seller_events SET detail = ? WHERE id = ?", (clean, r["id"]))
    store.conn.execute("INSERT INTO seller_events (seller_id, at, actor, kind, detail) VALUES (?, ?, ?, 'anonymised', '{}')",
                       (seller_id, iso(now), by))
    return row["address"]
