"""`maildesk import-mbox FILE`: an existing mailbox (e.g. a Google Takeout
export) becomes history, without answering anyone.

Each message goes through the same `Workflow.receive` as live mail, in
arrival order and at its own time, so complaints, threads and the audit
trail come out as they would have; with `workflow.silent` nothing is
queued (the timeline records `not_sent` instead). Imported complaints get
no clock (`next_due` cleared, also on seller outreach they opened, in
each message's own transaction so an interrupted import leaves nothing
due): deadlines long past must not fire escalations, reminders or
strikes now. Complaints still open at the end are history, not backlog:
they get status `imported` (not in overdue lists, nor the digest's ages;
closed without a word to anyone), except those first seen in the last
`open_recent_days`, which stay open for staff to pick up. The daemon's instance lock is held throughout, so no clock
runs beside an import. Message-IDs are remembered, so importing twice,
or reading the same mail from the live inbox later, changes nothing.
"""
from __future__ import annotations

import mailbox
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterable

from maildesk.logs import event as log_event
from maildesk.store import maintenance
from maildesk.store.db import StoreUnwell, iso
from maildesk.lock import AlreadyRunning, alone


@dataclass
class ImportResult:
    messages: int = 0
    complaints: int = 0
    duplicates: int = 0
    skipped: int = 0
    kept_open: int = 0


def arrival(raw: bytes, fallback: datetime) -> datetime:
    """When a message arrived: its Date header (UTC if it names no zone), else `fallback`."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536]).get("Date")
        when = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        return fallback
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class DaemonRunning(SystemExit):
    """A daemon (or `once`) is running on the same database: its clock would act on
    half-imported history. A SystemExit, so `maildesk import-mbox` stops with this one line."""


def import_mbox(app, path: Path, progress: bool = False, open_recent_days: float | None = None) -> ImportResult:
    """Load every message of the mbox at `path` into the store; send nothing.
    Holds the daemon's instance lock throughout: no clock runs while importing."""
    with _locked(app):
        box = mailbox.mbox(str(path), create=False)
        try:
            now = datetime.now(timezone.utc)
            order = sorted((arrival(box.get_bytes(key), now), n, key) for n, key in enumerate(box.iterkeys()))
            result = load(app, ((at, lambda key=key: box.get_bytes(key)) for at, _n, key in order),
                          path.name, _bar(len(order), progress))
        finally:
            box.close()
        result.kept_open = _close_history(app.store, datetime.now(timezone.utc), open_recent_days)
        return result


def import_messages(app, messages: Iterable[tuple[datetime, Callable[[], bytes]]], source: str) -> ImportResult:
    """As import_mbox, for (arrival, raw) pairs from elsewhere (`maildesk backfill`: the inbox)."""
    with _locked(app):
        result = load(app, messages, source, _NoBar())
        result.kept_open = _close_history(app.store, datetime.now(timezone.utc), None)
        return result


@contextmanager
def _locked(app):
    try:
        with alone(app.cfg.database_path, "importing a mailbox"):
            yield
    except AlreadyRunning as e:
        raise DaemonRunning(f"maildesk: {e}") from None


def load(app, messages: Iterable[tuple[datetime, Callable[[], bytes]]], source: str, bar) -> ImportResult:
    """Each message, in the order given, through the workflow as history: nothing queued, no clock."""
    store, workflow = app.store, app.workflow
    now = datetime.now(timezone.utc)
    first_new = maintenance.last_complaint_id(store) + 1
    first_outreach = maintenance.last_outreach_id(store) + 1
    max_bytes = int(app.cfg.mailbox.max_message_mb * 1024 * 1024)
    result = ImportResult()
    workflow.silent = True
    try:
        for at, raw in messages:
            _one(store, workflow, raw(), at, max_bytes, result,
                 lambda before, ref: _no_clock(store, first_new, first_outreach, before, ref, now, source))
            bar.update(1)
        result.complaints = maintenance.count_from(store, first_new)
    finally:
        workflow.silent = False
        bar.close()
    log_event("mbox_imported", file=source, messages=result.messages, complaints=result.complaints,
              duplicates=result.duplicates, skipped=result.skipped)
    return result


def _close_history(store, now: datetime, open_recent_days: float | None) -> int:
    """Imported complaints still open become `imported`, but for those first seen in the last
    `open_recent_days` (marked `kept_open`, so a later import leaves them open); how many stay
    open. Also closes what an interrupted import left open."""
    with store.transaction():
        recent = (maintenance.imported_open(store, now - timedelta(days=open_recent_days))
                  if open_recent_days else [])
        for cid in recent:
            store.add_event(cid, now, "maildesk", "kept_open", why=f"first seen in the last {open_recent_days:g} days")
        for cid in maintenance.imported_open(store):
            # no closed_at: settled at first contact, so not in today's digest either
            maintenance.set_status(store, cid, "imported")
    return maintenance.kept_open_count(store)


def _no_clock(store, first_new: int, first_outreach: int, before: int, ref: str | None, now: datetime,
              source: str) -> None:
    """Imported complaints, and seller outreach opened by old mail, get no clock: deadlines
    long gone must fire no escalation, reminder or strike. Run in each message's own
    transaction, so an interrupted import leaves nothing due. (The partial next_due
    indexes hold only what is due: cheap per message, also in a 10-year mailbox.)"""
    maintenance.stop_clocks_from(store, first_new, first_outreach)
    for cid in maintenance.complaints_from(store, before + 1):  # opened by this message
        store.add_event(cid, now, "maildesk", "imported", source=source)
    if ref:  # a complaint imported by an earlier (perhaps interrupted) run stays without a clock too
        maintenance.stop_clock_if_imported(store, ref)


def _one(store, workflow, raw: bytes, at: datetime, max_bytes: int, result: ImportResult, settle) -> None:
    result.messages += 1
    try:
        with store.transaction():
            before = maintenance.last_complaint_id(store)
            outcome = workflow.receive(raw[:max_bytes], at, at)
            settle(before, outcome.ref)
    except StoreUnwell:
        raise  # the store is unwell, not the message: stop, import again later (duplicates are skipped)
    except Exception as e:  # one bad message must not stop a 10-year mailbox
        log_event("import_skipped", severity=30, error=f"{type(e).__name__}: {e}"[:200])
        result.skipped += 1
        return
    if outcome.action == "duplicate":
        result.duplicates += 1
    elif outcome.action == "quarantine":
        log_event("import_skipped", severity=30, reason=outcome.reason[:200], arrived=iso(at))
        result.skipped += 1


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, progress: bool):
    """A tqdm bar on a terminal; nothing in logs, cron mail or tests."""
    if not progress:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, unit="mail", desc="importing")
