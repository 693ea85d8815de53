"""The digest's counts of complaints by category and by seller (issue 18): complaints first
contacted in a window, grouped in SQL (the index complaints_category serves the first)."""
from __future__ import annotations

from datetime import datetime

from maildesk.store.db import Store, iso


def by_category(store: Store, since: datetime, until: datetime) -> dict[str, int]:
    """How many complaints of each category were first contacted in the window."""
    return {r["category"]: r["n"] for r in store.all(
        "SELECT category, count(*) AS n FROM complaints WHERE first_contact > ? AND first_contact <= ? "
        "GROUP BY category", iso(since), iso(until))}


def by_seller(store: Store, since: datetime, until: datetime) -> dict[tuple[str, str], int]:
    """How many complaints linked to each seller, of each category, were first contacted in the window."""
    return {(r["seller_id"], r["category"]): r["n"] for r in store.all(
        "SELECT seller_id, category, count(*) AS n FROM complaints WHERE seller_id IS NOT NULL "
        "AND first_contact > ? AND first_contact <= ? GROUP BY seller_id, category", iso(since), iso(until))}
