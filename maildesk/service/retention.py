"""The retention sweep (issue 17): a clock job (App.clock_jobs) that anonymises the complaints
closed and quiet for `[retention] anonymise_after_days`, and the terminated sellers quiet for
`sellers_after_days` and named by no live complaint, the way `maildesk privacy erase` does
(service/privacy.py: one transaction per complaint, statistics kept), at most `batch_size`
a tick and never more than BUDGET_S seconds of it, so the inbox and the outbox wait little.

When the deleted bytes leave the file: each batch runs with `secure_delete` on (freed cells and
pages are overwritten as they go), but measured (NOTES-privacy.md) some fragments survive in
index pages until the file is rewritten. VACUUM rewrites the whole file, whatever the batch's
size: measured (bench/bench.py --only retention, 2 cores) 0.78 s for a 104 MB database idle, 1.7 s
under load (--only privacy): 7 to 17 ms per MB, so a database of a few GB of attachments would hold
the daemon half a minute or more, while the batch of 10,000 complaints itself took 29 s (2.9 ms
each, one short transaction per complaint: a CLI beside it never waits long). So VACUUM is not run after each batch
(during a backlog that would be every tick) but once a day after `[retention] scrub_at` (night,
local time), and only when the clock anonymised something since the last one. What waits for the
night is what `secure_delete` left; the rows are anonymised at once. An erasure request
(`maildesk privacy erase`) still vacuums at once: a person asked.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

from maildesk.core import retention
from maildesk.logs import event as log_event
from maildesk.service import privacy
from maildesk.store import privacy as privacy_rows, retention as rows
from maildesk.store.db import Store, from_iso, iso

BY = "retention"
BUDGET_S = 5.0  # per tick: 200 complaints take 0.6 s idle, 2.3 s under load (bench: 2.9 / 11.3 ms each)
SCRUB_KEY = "retention_scrubbed"  # {"day": local date, "at": iso} of the last VACUUM
MAILBOX_KEY = "retention_mailbox"  # {"day": local date when done, "at": iso, "removed": n} of the last mailbox sweep
MAILBOX_LIMIT = 500  # messages a folder a pass, deleted 250 UIDs a command: a second or two on Gmail


def sweep(store: Store, cfg, now: datetime) -> dict[str, int]:
    """One batch: the complaints due, oldest first, then the sellers due; counts."""
    r = cfg.retention
    started = time.monotonic()
    done = {"complaints": 0, "sellers": 0}
    candidates = rows.due_complaints(store, retention.cutoff(now, r.anonymise_after_days), r.batch_size)
    if candidates:
        privacy_rows.secure(store)
    try:
        for c in candidates:
            if time.monotonic() - started > BUDGET_S:
                break
            with store.transaction():  # the rule decides, on the row as it is now (a CLI may have reopened it)
                fresh = rows.waiting(store, c["id"])
                if fresh is None or not retention.complaint_due(fresh["status"], from_iso(fresh["last"]), now,
                                                                r.anonymise_after_days):
                    continue
                privacy.anonymise_complaint(store, c["id"], now=now, by=BY)
            done["complaints"] += 1
        # one seller a pass at most: their traces are found by address (messages and outbox scanned,
        # no index: store/privacy.erase_elsewhere), and terminated sellers are few
        for s in rows.seller_candidates(store):
            if done["complaints"] >= r.batch_size or time.monotonic() - started > BUDGET_S:
                break
            if retention.seller_due(s["status"], from_iso(s["last"]) if s["last"] else None, s["live"], now,
                                    r.sellers_after_days):
                privacy_rows.secure(store)
                privacy.anonymise_seller(store, s["id"], now=now, by=BY)
                done["sellers"] += 1
                break
    finally:
        privacy_rows.secure(store, on=False)
    if any(done.values()):
        log_event("retention_swept", **done, seconds=round(time.monotonic() - started, 2))
    return done


def scrub_if_due(store: Store, cfg, now: datetime) -> dict | None:
    """The day's VACUUM (module docstring), when due; what scrub_file said, or None."""
    last = json.loads(store.get_state(SCRUB_KEY) or "{}")
    since = from_iso(last["at"]) if last.get("at") else datetime.fromtimestamp(0, now.tzinfo)
    gone = rows.anonymised_between(store, since, now, BY)
    local = now.astimezone(cfg.tz)
    if not retention.scrub_due(local, cfg.retention.scrub_at, last.get("day"), sum(gone.values())):
        return None
    started = time.monotonic()
    result = privacy_rows.scrub_file(store)
    with store.transaction():
        store.set_state(SCRUB_KEY, json.dumps({"day": local.date().isoformat(), "at": iso(now)}))
    log_event("retention_scrubbed", **gone, busy=result["busy"], seconds=round(time.monotonic() - started, 2))
    return result


def sweep_mailbox(store: Store, cfg, inbox, now: datetime) -> dict[str, int] | None:
    """maildesk's own folders (`[mailbox] processed_folder`, `quarantine_folder`; never the inbox,
    never Sent): the mail that arrived `anonymise_after_days` ago or earlier is deleted and
    expunged, once a local day after `[retention] scrub_at`, on the daemon's own connection,
    MAILBOX_LIMIT a folder a pass (a backlog goes on at the next passes). Mail of a complaint still
    open is deleted too: its raw copy stays in the database until the complaint is anonymised.
    None when not due, off (`enabled = false`) or read-only; else how many went from each folder."""
    if not cfg.retention.enabled or inbox.cfg.read_only:
        return None
    last = json.loads(store.get_state(MAILBOX_KEY) or "{}")
    local = now.astimezone(cfg.tz)
    if not retention.mailbox_due(local, cfg.retention.scrub_at, last.get("day")):
        return None
    started = time.monotonic()
    mb = inbox.cfg
    folders = [f for f in dict.fromkeys((mb.processed_folder, mb.quarantine_folder))
               if f and f.upper() != "INBOX" and f != mb.folder and f != mb.sent_folder]
    removed, more = {}, False
    for folder in folders:
        n, left = inbox.delete_older(folder, retention.cutoff(now, cfg.retention.anonymise_after_days), MAILBOX_LIMIT)
        removed[folder] = n
        more = more or left
    total = sum(removed.values()) + (last.get("removed", 0) if last.get("pending") else 0)
    with store.transaction():
        store.set_state(MAILBOX_KEY, json.dumps({"day": None if more else local.date().isoformat(),
                                                 "pending": more, "at": iso(now), "removed": total}))
    log_event("retention_mailbox", **{f"removed_{k.rsplit('/', 1)[-1]}": v for k, v in removed.items()},
              more=more, seconds=round(time.monotonic() - started, 2))
    return removed


class RetentionJob:
    """Clock job: a batch every tick while anything is due, the file scrubbed once a night."""

    def __init__(self, app):
        self.app = app

    def __call__(self, now: datetime) -> dict | None:
        cfg, store = self.app.cfg, self.app.store
        if not cfg.retention.enabled:
            return None
        done = sweep(store, cfg, now)
        scrub_if_due(store, cfg, now)
        return done


def summary(store: Store, cfg, now: datetime) -> dict:
    """For the digest: anonymised by the clock in the last 24 h, and when the next batch falls due
    (the oldest complaint waiting: its last moment plus the period; `due_now` when it passed)."""
    if not cfg.retention.enabled:
        return {"enabled": False}
    counts = rows.anonymised_between(store, now - timedelta(days=1), now, BY)
    oldest = rows.oldest_waiting(store)
    nxt = retention.next_due(from_iso(oldest), cfg.retention.anonymise_after_days) if oldest else None
    mail = json.loads(store.get_state(MAILBOX_KEY) or "{}")
    mail_removed = mail.get("removed", 0) if mail.get("at") and from_iso(mail["at"]) > now - timedelta(days=1) else 0
    return {"enabled": True, **counts, "mail_removed": mail_removed, "next_due": nxt, "due_now": nxt is not None and nxt <= now,
            "after_days": cfg.retention.anonymise_after_days}
