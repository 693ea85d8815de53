"""Coalesced mail about outsiders: admin alerts (a flood, forged staff mail) and the staff
notice of a flooding mailbox's complaints. Each occurrence is a row in `notices`; the
first of its kind (and key) in an hour is mailed at once, later ones wait and go
together, with their count, in the next mail of that kind: when the next one comes
after the hour, or from the clock (`flush`) at the hour's end. Nothing is dropped:
every occurrence is in exactly one mail (`budgets.py` decides when).
"""
from __future__ import annotations

import json
from datetime import datetime

from maildesk.core import budgets, policy
from maildesk.logs import event as log_event
from maildesk.store.db import from_iso, iso

SHOWN = 20  # occurrences listed one by one in a coalesced mail; the count covers them all


class Notices:
    def __init__(self, workflow):
        self.workflow = workflow
        self.store = workflow.store

    def raise_notice(self, key: str, mail: policy.Mail, now: datetime, complaint_id: int | None = None) -> bool:
        """Record one occurrence of `mail` (its kind is the template); mail it now with what
        waits, or let it wait. Call inside a transaction. True when mailed now."""
        self.store.insert("notices", {
            "kind": mail.template, "key": key, "at": iso(now), "complaint_id": complaint_id,
            "context": json.dumps({"to": list(mail.to), "kind": mail.kind, "audience": mail.audience,
                                   "context": mail.context}, ensure_ascii=False, default=str)})
        if budgets.mail_now(self._last_mailed(mail.template, key), now):
            self._mail(mail.template, key, now)
            return True
        log_event("notice_coalesced", kind=mail.template)
        return False

    def held_since(self, kind: str, key: str, since: datetime) -> bool:
        """Was there a notice of this kind and key since then (mailed or waiting)?"""
        return self.store.one("SELECT 1 FROM notices WHERE kind = ? AND key = ? AND at >= ? LIMIT 1",
                              kind, key, iso(since)) is not None

    def flush(self, now: datetime) -> int:
        """Clock job: the notices that waited out their hour go, one mail per kind and key."""
        waiting = self.store.all("SELECT kind, key, min(at) AS oldest FROM notices WHERE mailed_at IS NULL "
                                 "GROUP BY kind, key")
        mailed = 0
        for row in waiting:
            if budgets.summary_due(self._last_mailed(row["kind"], row["key"]), from_iso(row["oldest"]), now):
                with self.store.transaction():
                    self._mail(row["kind"], row["key"], now)
                mailed += 1
        return mailed

    def _last_mailed(self, kind: str, key: str) -> datetime | None:
        return from_iso(self.store.scalar("SELECT max(mailed_at) FROM notices WHERE kind = ? AND key = ? "
                                          "AND mailed_at IS NOT NULL", kind, key))

    def _mail(self, kind: str, key: str, now: datetime) -> None:
        waiting = "FROM notices WHERE kind = ? AND key = ? AND mailed_at IS NULL"
        count, since, last_id = self.store.one(f"SELECT count(*), min(at), max(id) {waiting}", kind, key)
        rows = self.store.all(f"SELECT at, context {waiting} ORDER BY id DESC LIMIT ?", kind, key, SHOWN + 1)
        items = [{**json.loads(r["context"]), "at": from_iso(r["at"])} for r in reversed(rows)]
        latest = items[-1]
        context = {**latest["context"], "count": count, "since": from_iso(since),
                   "earlier": [{**i["context"], "at": i["at"]} for i in items[:-1]]}
        message_id = self.workflow.queue(None, policy.Mail(kind, tuple(latest["to"]), latest["kind"],
                                                           latest["audience"], context=context), now)
        self.store.conn.execute(f"UPDATE notices SET mailed_at = ?, message_id = ? WHERE kind = ? AND key = ? "
                                f"AND mailed_at IS NULL AND id <= ?", (iso(now), message_id, kind, key, last_id))
        log_event("notice_mailed", kind=kind, count=count)
