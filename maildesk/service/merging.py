"""Merging complaint A into B, by mail (`#merge REF [force]`) or on the command line
(`maildesk merge A B`): load both, let `core/merging.py` decide, then in the caller's
transaction close A as merged, move its rows under B (`store/merges.py`), and tell A's
customer once, on B's thread."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.core import merging, parties, policy
from maildesk.logs import event as log_event
from maildesk.store import merges


@dataclass(frozen=True)
class Result:
    merged: bool
    source: str
    target: str
    reason: str = ""  # why it was refused
    notes: tuple[str, ...] = ()
    moved: merges.Moved | None = None

    def line(self) -> str:
        if not self.merged:
            return f"{self.source} not merged: {self.reason}"
        m = self.moved
        notes = "".join(f"; {n}" for n in self.notes)
        return (f"{self.source} merged into {self.target}: {m.messages} message(s), {m.attachments} attachment(s) "
                f"and {m.events} event(s) moved; {self.source} is closed{notes}")


def _side(row) -> merging.Side | None:
    if row is None:
        return None
    return merging.Side(row["ref"], row["customer_addr"], row["customer_key"] or row["customer_addr"],
                        row["status"], row["merged_into"])


class Merger:
    def __init__(self, workflow):
        self.wf = workflow
        self.store = workflow.store

    def merge(self, source_row, target_ref: str, *, force: bool, actor: str, now: datetime,
              text: str = "") -> Result:
        """Merge `source_row` into `target_ref` (call inside a transaction)."""
        target_row = self.store.complaint(target_ref)
        verdict = merging.decide(_side(source_row), _side(target_row), target_ref.upper(), force=force,
                                 actor=actor, now=now, text=text)
        if isinstance(verdict, merging.Refusal):
            log_event("merge_refused", source_row["ref"], target=target_ref, reason=verdict.reason)
            return Result(False, source_row["ref"], target_ref.upper(), reason=verdict.reason)
        moved = merges.move(self.store, source_row["id"], target_row["id"], source_row["ref"], target_row["ref"])
        if (source_row["customer_key"] or "") == (target_row["customer_key"] or ""):  # her Cc on A follows her to B
            self.wf.parties.take_cc(target_row, parties.stored(source_row), actor, now)
        self.wf.apply(source_row, verdict.source, now, actor)  # stays on A: closed as merged
        self.wf.apply(target_row, verdict.target, now, actor)
        survivor = self.store.complaint_by_id(target_row["id"])
        # A's customer, in A's language, on B's thread (under B's reference)
        self.wf.queue({**dict(survivor), "lang": source_row["lang"]}, verdict.notice, now)
        self.store.add_event(target_row["id"], now, actor, "merge_moved", source=source_row["ref"],
                             messages=moved.messages, attachments=moved.attachments, events=moved.events)
        log_event("merged", source_row["ref"], target=target_row["ref"], messages=moved.messages,
                  events=moved.events, forced=force)
        return Result(True, source_row["ref"], target_row["ref"], notes=verdict.notes, moved=moved)

    def by_mail(self, complaint, request, actor: str, now: datetime, reply_to: str | None, subject: str):
        """A staff `#merge`: carried out or refused, the staff member gets one short reply. Returns
        the complaint the staff mail's further commands act on (B once merged)."""
        result = self.merge(complaint, request.target, force=request.force, actor=actor, now=now,
                            text=request.text)
        on = self.store.complaint(result.target) if result.merged else complaint
        self.wf.queue(on, policy.Mail("staff_merge", (actor,), "command_reply", "staff", context={
            "merged": result.merged, "source": result.source, "target": result.target, "reason": result.reason,
            "line": result.line(), "notes": list(result.notes), "dropped_text": bool(request.text) and not result.merged,
            "original_subject": subject[:150]}), now, in_reply_to=reply_to)
        return on
