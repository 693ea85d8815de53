"""`maildesk import-mbox FILE`: an existing mailbox (e.g. a Google Takeout
export) becomes history, without answering anyone.

Each message goes through the same `Workflow.receive` as live mail, in
arrival order and at its own time, so complaints, threads and the audit
trail come out as they would have; with `workflow.silent` nothing is
queued (the timeline records `not_sent` instead). Imported complaints get
no clock (`next_due` cleared, also on seller outreach they opened):
deadlines long past must not fire escalations, reminders or strikes now. Message-IDs are remembered, so importing
twice, or reading the same mail from the live inbox later, changes nothing.
"""
from __future__ import annotations

import mailbox
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path

from .logs import event as log_event
from .store import iso


@dataclass
class ImportResult:
    messages: int = 0
    complaints: int = 0
    duplicates: int = 0
    skipped: int = 0


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


def import_mbox(app, path: Path, progress: bool = False) -> ImportResult:
    """Load every message of the mbox at `path` into the store; send nothing."""
    store, workflow = app.store, app.workflow
    box = mailbox.mbox(str(path), create=False)
    now = datetime.now(timezone.utc)
    order = sorted((arrival(box.get_bytes(key), now), n, key) for n, key in enumerate(box.iterkeys()))
    first_new = (store.scalar("SELECT max(id) FROM complaints") or 0) + 1
    first_outreach = (store.scalar("SELECT max(id) FROM outreach") or 0) + 1
    max_bytes = int(app.cfg.mailbox.max_message_mb * 1024 * 1024)
    result = ImportResult()
    bar = _bar(len(order), progress)
    workflow.silent = True
    try:
        for at, _n, key in order:
            _one(store, workflow, box.get_bytes(key), at, max_bytes, result)
            bar.update(1)
        with store.transaction():
            result.complaints = store.scalar("SELECT count(*) FROM complaints WHERE id >= ?", first_new)
            store.conn.execute("UPDATE complaints SET next_due = NULL WHERE id >= ?", (first_new,))
            # seller outreach opened by old mail: no reminders or strikes for deadlines long gone
            store.conn.execute("UPDATE outreach SET next_due = NULL WHERE id >= ?", (first_outreach,))
            for (cid,) in store.all("SELECT id FROM complaints WHERE id >= ?", first_new):
                store.add_event(cid, now, "maildesk", "imported", source=path.name)
    finally:
        workflow.silent = False
        bar.close()
        box.close()
    log_event("mbox_imported", file=str(path), messages=result.messages, complaints=result.complaints,
              duplicates=result.duplicates, skipped=result.skipped)
    return result


def _one(store, workflow, raw: bytes, at: datetime, max_bytes: int, result: ImportResult) -> None:
    result.messages += 1
    try:
        with store.transaction():
            outcome = workflow.receive(raw[:max_bytes], at, at)
    except sqlite3.OperationalError:
        raise  # the store is unwell, not the message: stop, import again later (duplicates are skipped)
    except Exception as e:  # one bad message must not stop a 10-year mailbox
        log_event("import_skipped", level=30, error=f"{type(e).__name__}: {e}"[:200])
        result.skipped += 1
        return
    if outcome.action == "duplicate":
        result.duplicates += 1
    elif outcome.action == "quarantine":
        log_event("import_skipped", level=30, reason=outcome.reason[:200], arrived=iso(at))
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
