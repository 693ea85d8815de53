"""The very first start: mail that reached the inbox before it (less `[mailbox]
first_start_hours`) is not answered, only left where it is and remembered, so that
`maildesk backfill --since DATE` can load it later as history (nothing sent, no clock)."""
from __future__ import annotations

from datetime import datetime, timedelta

from maildesk.adapters.imap_types import Unfetchable
from maildesk.logs import event as log_event
from maildesk.service.importer import import_messages
from maildesk.store import inbox as inbox_state
from maildesk.store.db import iso


def left_untouched(store, inbox, uids: list[int], now: datetime) -> set[int]:
    """UIDs left because they came before the first start. Decided once, on an empty database
    (never polled), and remembered; decided again if the folder's UIDVALIDITY changes."""
    key = f"first_start:{inbox.cfg.folder}"
    saved = store.get_state(key)
    if saved is None and store.get_state("last_poll") is not None:
        return set()  # a database from before this rule: it has already read this inbox
    info = inbox_state.state_json(store, key, None) or {
        "cutoff": iso(now - timedelta(hours=inbox.cfg.first_start_hours))}
    if info.get("validity") == inbox.uidvalidity:
        return inbox_state.expand_ranges(info["left"]) & set(uids) if info["left"] else set()
    cutoff = datetime.fromisoformat(info["cutoff"])
    old = inbox.arrived_before(uids, cutoff) if inbox.cfg.first_start_hours > 0 else []
    info.update(validity=inbox.uidvalidity, left=inbox_state.uid_ranges(old), count=len(old))
    with store.transaction():
        inbox_state.set_state_json(store, key, info)
    if old:
        log_event("first_start_left_old_mail", severity=30, left=len(old), folder=inbox.cfg.folder,
                  before=info["cutoff"][:16],
                  hint="they stay in the inbox unanswered; to keep them as history without answering "
                       "anyone: maildesk backfill --since YYYY-MM-DD (or import-mbox a Takeout export)")
    return set(old)


def backfill(app, inbox, since: datetime):
    """The messages the first start left in the (connected) inbox that arrived since `since`,
    loaded as history and left where they are; None when there are none to load."""
    saved = inbox_state.state_json(app.store, f"first_start:{inbox.cfg.folder}", {})
    if saved.get("validity") != inbox.uidvalidity or not saved.get("left"):
        return None
    present = set(inbox.pending())
    left = sorted(u for u in inbox_state.expand_ranges(saved["left"]) if u in present)
    wanted = [u for u in left if u not in set(inbox.arrived_before(left, since))]
    max_bytes = int(inbox.cfg.max_message_mb * 1024 * 1024)
    items = ((f.arrived_at, lambda raw=f.raw: raw) for f in inbox.fetch(wanted, max_bytes)
             if not isinstance(f, Unfetchable))
    return import_messages(app, items, f"{inbox.cfg.folder} (backfill)")
