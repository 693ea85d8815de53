"""Coalesced mail about outsiders: admin alerts (a flood, forged staff mail) and the staff
notice of a flooding mailbox's complaints. Each occurrence is a row in `notices`; the
first of its kind (and key) in an hour is mailed at once, later ones wait and go
together, with their count, in the next mail of that kind: when the next one comes
after the hour, or from the clock (`flush`) at the hour's end. Nothing is dropped:
every occurrence is in exactly one mail (`budgets.py` decides when).
"""
from __future__ import annotations

from datetime import datetime

from maildesk.core import budgets, policy
from maildesk.logs import event as log_event
from maildesk.store import notices as stored

SHOWN = 20  # occurrences listed one by one in a coalesced mail; the count covers them all


class Notices:
    def __init__(self, workflow):
        self.workflow = workflow
        self.store = workflow.store

    def raise_notice(self, key: str, mail: policy.Mail, now: datetime, complaint_id: int | None = None) -> bool:
        """Record one occurrence of `mail` (its kind is the template); mail it now with what
        waits, or let it wait. Call inside a transaction. True when mailed now."""
        stored.add(self.store, mail.template, key, now, complaint_id,
                   {"to": list(mail.to), "kind": mail.kind, "audience": mail.audience, "context": mail.context})
        if budgets.mail_now(self._last_mailed(mail.template, key), now):
            self._mail(mail.template, key, now)
            return True
        log_event("notice_coalesced", kind=mail.template)
        return False

    def held_since(self, kind: str, key: str, since: datetime) -> bool:
        """Was there a notice of this kind and key since then (mailed or waiting)?"""
        return stored.any_since(self.store, kind, key, since)

    def flush(self, now: datetime) -> int:
        """Clock job: the notices that waited out their hour go, one mail per kind and key."""
        mailed = 0
        for w in stored.waiting(self.store):
            if budgets.summary_due(self._last_mailed(w.kind, w.key), w.oldest, now):
                with self.store.transaction():
                    self._mail(w.kind, w.key, now)
                mailed += 1
        return mailed

    def _last_mailed(self, kind: str, key: str) -> datetime | None:
        return stored.last_mailed(self.store, kind, key)

    def _mail(self, kind: str, key: str, now: datetime) -> None:
        batch = stored.batch(self.store, kind, key, SHOWN + 1)
        items = batch.shown
        latest = items[-1]
        context = {**latest["context"], "count": batch.count, "since": batch.since,
                   "earlier": [{**i["context"], "at": i["at"]} for i in items[:-1]]}
        message_id = self.workflow.queue(None, policy.Mail(kind, tuple(latest["to"]), latest["kind"],
                                                           latest["audience"], context=context), now)
        stored.mark_mailed(self.store, kind, key, batch.last_id, now, message_id)
        log_event("notice_mailed", kind=kind, count=batch.count)
