"""Queries of the operations side: the recovery after a restore and the import of an
old mailbox. Writes expect the caller's open `Store.transaction()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.store.db import Store, iso
from maildesk.store.sql import OPEN_IN


@dataclass(frozen=True)
class QueuedMail:
    id: int
    message_id: str


def last_complaint_id(store: Store) -> int:
    """The highest complaint id so far (0 for none): complaints above it are opened later."""
    return store.scalar("SELECT max(id) FROM complaints") or 0


def last_outreach_id(store: Store) -> int:
    return store.scalar("SELECT max(id) FROM outreach") or 0


# --- after a restore ----------------------------------------------------------------------------

def queued_mail(store: Store) -> list[QueuedMail]:
    return [QueuedMail(r["id"], r["message_id"])
            for r in store.all("SELECT id, message_id FROM outbox WHERE status = 'queued'")]


def mark_sent(store: Store, outbox_id: int, at: datetime, note: str) -> None:
    """An outbox row found already sent (in the Sent folder) without our having recorded it."""
    store.conn.execute("UPDATE outbox SET status = 'sent', sent_at = ?, last_error = ? WHERE id = ?",
                       (iso(at), note, outbox_id))


def give_back_reference(store: Store, complaint_id: int, new: str, old: str) -> None:
    """The complaint opened again under `new` takes back its reference `old`, also in
    what `processed` recorded for its mail."""
    store.conn.execute("UPDATE complaints SET ref = ? WHERE id = ?", (old, complaint_id))
    store.conn.execute("UPDATE processed SET ref = ? WHERE ref = ?", (old, new))


# --- importing an old mailbox -------------------------------------------------------------------

# still open, without a clock, marked `imported`, and not kept open on purpose
_IMPORTED_OPEN = (f"status IN {OPEN_IN} AND next_due IS NULL AND EXISTS (SELECT 1 FROM events e "
                  "WHERE e.complaint_id = complaints.id AND e.kind = 'imported') AND NOT EXISTS (SELECT 1 FROM "
                  "events k WHERE k.complaint_id = complaints.id AND k.kind = 'kept_open')")


def complaints_from(store: Store, first_id: int) -> list[int]:
    """Ids of the complaints from `first_id` on (those opened since it was the next id)."""
    return [r[0] for r in store.all("SELECT id FROM complaints WHERE id >= ?", first_id)]


def count_from(store: Store, first_id: int) -> int:
    """How many complaints have an id from `first_id` on."""
    return store.scalar("SELECT count(*) FROM complaints WHERE id >= ?", first_id)


def imported_open(store: Store, first_contact_since: datetime | None = None) -> list[int]:
    """Imported complaints still open and not kept open; only those first seen since then, if given."""
    if first_contact_since is None:
        return [r[0] for r in store.all(f"SELECT id FROM complaints WHERE {_IMPORTED_OPEN}")]
    return [r[0] for r in store.all(f"SELECT id FROM complaints WHERE {_IMPORTED_OPEN} AND first_contact >= ?",
                                    iso(first_contact_since))]


def kept_open_count(store: Store) -> int:
    """Open complaints an import kept open (marked `kept_open`)."""
    return store.scalar(f"SELECT count(*) FROM complaints c WHERE status IN {OPEN_IN} AND "
                        "EXISTS (SELECT 1 FROM events k WHERE k.complaint_id = c.id AND k.kind = 'kept_open')")


def stop_clocks_from(store: Store, first_complaint: int, first_outreach: int) -> None:
    """No deadline for complaints and outreach from these ids on (the partial next_due
    indexes hold only what is due: cheap per message, also in a 10-year mailbox)."""
    store.conn.execute("UPDATE complaints INDEXED BY complaints_next_due SET next_due = NULL "
                       "WHERE next_due IS NOT NULL AND id >= ?", (first_complaint,))
    store.conn.execute("UPDATE outreach INDEXED BY outreach_next_due SET next_due = NULL "
                       "WHERE next_due IS NOT NULL AND id >= ?", (first_outreach,))


def stop_clock_if_imported(store: Store, ref: str) -> None:
    """A complaint an earlier (perhaps interrupted) import opened stays without a clock."""
    store.conn.execute("UPDATE complaints SET next_due = NULL WHERE ref = ? AND next_due IS NOT NULL AND "
                       "EXISTS (SELECT 1 FROM events e WHERE e.complaint_id = complaints.id "
                       "AND e.kind = 'imported')", (ref,))


def set_status(store: Store, complaint_id: int, status: str) -> None:
    store.update("complaints", complaint_id, {"status": status})
