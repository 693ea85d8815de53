"""When the clock anonymises personal data (issue 17). The CNIL's reference for customer data
(référentiel « gestion des activités commerciales », 2018, updated 2021) keeps it about three
years after the last contact; `[retention] anonymise_after_days` (1095) counts from a complaint's
last moment: its closing, or the last message in or out if one came later. A terminated seller
is anonymised likewise once nothing happened on their record for `sellers_after_days`.
Pure: the store finds candidates by date, this file says which are due and when the next falls."""
from __future__ import annotations

from datetime import datetime, time, timedelta


def cutoff(now: datetime, days: float) -> datetime:
    """Anything whose last moment is at or before this is due at `now`."""
    return now - timedelta(days=days)


def complaint_due(status: str, last_moment: datetime | None, now: datetime, days: float) -> bool:
    """A complaint is anonymised once closed (or merged into another, or imported history) and
    quiet for `days`; an open one never, however old: the erase would break a live case."""
    if status not in ("closed", "merged", "imported") or last_moment is None:
        return False
    return last_moment <= cutoff(now, days)


def seller_due(status: str, last_moment: datetime | None, open_complaints: int, now: datetime, days: float) -> bool:
    """A seller's record goes once terminated, quiet for `days`, and named by no open complaint."""
    return status == "terminated" and open_complaints == 0 and last_moment is not None \
        and last_moment <= cutoff(now, days)


def next_due(oldest_waiting: datetime | None, days: float) -> datetime | None:
    """When the next batch falls due: the oldest closed, not yet anonymised complaint's last
    moment plus the retention period (None: nothing waits)."""
    return oldest_waiting + timedelta(days=days) if oldest_waiting else None


def scrub_due(local_now: datetime, scrub_at: str, last_scrub_day: str | None, pending: int) -> bool:
    """The file is vacuumed once a local day, after `scrub_at` ("HH:MM"), and only when the clock
    anonymised something since the last time (`pending`): never after each batch (a VACUUM
    rewrites the whole file; service/retention.py says what it costs)."""
    hh, _, mm = scrub_at.partition(":")
    return pending > 0 and local_now.time() >= time(int(hh), int(mm)) and last_scrub_day != local_now.date().isoformat()


def mailbox_due(local_now: datetime, at: str, last_day: str | None) -> bool:
    """maildesk's own IMAP folders are swept once a local day, at the first pass after `at`
    ("HH:MM", the night's `scrub_at`); a pass that left mail behind (`last_day` not set) is
    followed by another at the next pass."""
    hh, _, mm = at.partition(":")
    return local_now.time() >= time(int(hh), int(mm)) and last_day != local_now.date().isoformat()
