"""The read behind `maildesk export`: complaints first contacted in a window, oldest first,
with only the columns the export shows (no message bodies, no customer address)."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

from maildesk.store.db import Store, from_iso, iso

_TIMES = ("first_contact", "resolved_at", "closed_at", "first_staff_answer_at")


def complaints_between(store: Store, since: datetime, until: datetime) -> Iterator[dict]:
    """Complaints with since <= first contact < until, times as datetimes."""
    for r in store.all("SELECT ref, subject, first_contact, resolved_at, closed_at, first_staff_answer_at, level, "
                       "status, category, seller_id, rating FROM complaints "
                       "WHERE first_contact >= ? AND first_contact < ? ORDER BY first_contact, id",
                       iso(since), iso(until)):
        row = dict(r)
        for key in _TIMES:
            row[key] = from_iso(row[key])
        yield row
