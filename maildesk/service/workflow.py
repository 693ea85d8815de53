"""Carrying out decisions: a decision of the core becomes stored state, an
audit trail and queued mail, in one transaction. Load -> decide -> save: the
core decides (policy, commands, sellers, budgets), this file saves.

The caller (daemon, CLI) opens the transaction; everything written here for
one event commits or rolls back together, so a crash leaves either nothing
or the whole event, never an acknowledgement without its complaint.
Inbound mail is sorted out in `intake.py`, the seller side in `seller_desk.py`.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from maildesk.config import Config
from maildesk.core import addresses, budgets, parties, policy, refs
from maildesk.core.addresses import mailbox_key
from maildesk.inbound.parse import InboundMail
from maildesk.logs import event as log_event
from maildesk.outbound.compose import compose, new_message_id
from maildesk.outbound.templates import Templates
from maildesk.service import dossier, mail_files
from maildesk.service.intake import Intake, Outcome
from maildesk.service.merging import Merger
from maildesk.service.notices import Notices
from maildesk.service.parties import Parties
from maildesk.service.seller_desk import SellerDesk
from maildesk.store import complaints as queries, files
from maildesk.store.complaints import complaint_from_row
from maildesk.store.db import Store, StoreUnwell, from_iso, iso

AUTO_SUBMITTED = {"ack": "auto-replied", "relay": None, "outreach": None}  # everything else: auto-generated
HISTORY = 5  # messages shown in staff notifications
# inbound kinds never shown to anyone as part of a complaint (staff notifications' history): automatic
# mail, forged staff mail and unlisted colleagues' mail are recorded for the timeline, but their
# text is nobody's news
UNSHOWN = ("auto", "bounce", "suspicious", "staff_unlisted")

Fault = Callable[..., None]  # fault(point, **facts): tests make a named step fail (see `fault` below)


class Workflow:
    """`fault`, passed in by whoever builds the app, is called at named points ("receive",
    "outreach_step") so that a test can make one step fail without patching this class."""

    def __init__(self, cfg: Config, store: Store, templates: Templates, fault: Fault | None = None):
        self.cfg = cfg
        self.store = store
        self.templates = templates
        self.fault = fault
        self.silent = False  # importing history (`import-mbox`): decide everything, send nothing
        self.sellers = SellerDesk(self)  # P11-P13: registry, outreach, contact details, sanctions
        self.notices = Notices(self)  # admin alerts and flood notices, coalesced to one mail an hour
        self.parties = Parties(self)  # the customer's Cc (issue 16): kept, copied, parties' mail
        self.intake = Intake(self, self.sellers)  # inbound mail: who wrote, which complaint
        self.merger = Merger(self)  # `#merge` and `maildesk merge`: A into B

    def at(self, point: str, **facts) -> None:
        if self.fault:
            self.fault(point, **facts)

    # --- inbound (intake.py) ------------------------------------------------------
    def receive(self, raw: bytes, arrived_at: datetime, now: datetime, omitted: tuple = ()) -> Outcome:
        """One inbound message (intake.py). Call inside a transaction."""
        self.at("receive", arrived_at=arrived_at)
        return self.intake.receive(raw, arrived_at, now, omitted)

    def record_sent(self, raw: bytes, sent_at: datetime, now: datetime, omitted: tuple = ()) -> str | None:
        """A message found in the Sent folder (intake.py). Call inside a transaction."""
        return self.intake.record_sent(raw, sent_at, now, omitted)

    def store_message(self, complaint_id: int | None, mail: InboundMail, raw: bytes, kind: str,
                      at: datetime) -> int:
        row_id = self.store.insert("messages", {
            "complaint_id": complaint_id, "message_id": mail.message_id, "direction": "in",
            "kind": kind, "at": iso(at), "from_addr": mail.from_addr, "to_addrs": ", ".join(mail.to),
            "subject": mail.subject, "body": mail.text, "reply_text": mail.reply_text, "raw": raw,
        })
        if mail.notes and complaint_id is not None:  # read by guessing: staff see it on the complaint
            self.store.add_event(complaint_id, at, "maildesk", "decoded_best_effort", notes=list(mail.notes))
        limit = int(self.cfg.storage.attachment_max_mb * 1024 * 1024)
        for att in mail.attachments:
            files.save(self.store, row_id, att, limit)
        return row_id

    # --- the clock and commands ----------------------------------------------
    def sweep(self, now: datetime, limit: int = 1000) -> int:
        """Act on every complaint whose next due moment has come. Call inside a transaction."""
        rows = self.store.due_complaints(now, limit)
        for row in rows:
            try:
                with self.store.transaction():  # a savepoint: one bad complaint rolls back alone
                    self.apply(row, policy.sweep(complaint_from_row(row), now, self.cfg), now,
                               actor="maildesk", swept=True)
            except StoreUnwell:
                raise  # the store is unwell, not this complaint
            except Exception as e:  # e.g. a broken template: look again in an hour, tell the admins' log
                log_event("sweep_failed", row["ref"], severity=40, exc_info=True)
                self.store.update("complaints", row["id"], {"next_due": iso(now + timedelta(hours=1))})
                self.store.add_event(row["id"], now, "maildesk", "sweep_failed", error=f"{type(e).__name__}: {e}"[:300])
        return len(rows)

    def resolve(self, ref: str, note: str, actor: str, now: datetime) -> policy.Decision:
        row = self.store.complaint(ref)
        if row is None:
            raise KeyError(ref)
        decision = policy.resolve(complaint_from_row(row), now, self.cfg, note, actor)
        self.apply(row, decision, now, actor=actor)
        return decision

    # --- applying a decision -------------------------------------------------
    def apply(self, row, decision: policy.Decision, now: datetime, actor: str,
              staff_name: str | None = None, swept: bool = False, message_row: int | None = None) -> None:
        """Save a decision on the complaint `row`: its changes, events and mails. `message_row`: the
        stored message the decision answers, whose files its mails may carry (`Mail.carry`)."""
        complaint_id = row["id"]
        changes = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in decision.changes.items()}
        state = policy.apply(complaint_from_row(row), decision.changes)
        due = policy.next_due(state, self.cfg, after=now if swept else None)
        changes["next_due"] = iso(due) if due else None
        self.store.update("complaints", complaint_id, changes)
        for ev in decision.events:
            self.store.add_event(complaint_id, now, actor, ev.kind, **ev.detail)
            if ev.kind in ("escalated", "resolved", "closed", "reopened", "rated", "target_missed"):
                log_event(ev.kind, row["ref"], **{k: v for k, v in ev.detail.items() if k != "due"})
        if decision.mails:
            fresh = self.store.complaint_by_id(complaint_id)
            for mail in decision.mails:
                self.queue(fresh, mail, now, staff_name=staff_name, message_row=message_row, actor=actor)
        if message_row is not None and not any(ev.kind == "opened" for ev in decision.events):
            self._customer_files_refused(complaint_id, message_row, now)

    def _customer_files_refused(self, complaint_id: int, message_row: int, now: datetime) -> None:
        """A later customer message carried a file no mail may pass on: the customer is told in one
        short automatic mail (the acknowledgement says it for a new complaint), within the budget."""
        refused = mail_files.refused(self.cfg, self.store, complaint_id, message_row)
        if refused:
            fresh = self.store.complaint_by_id(complaint_id)
            self.queue(fresh, policy.Mail("files_held", (fresh["customer_addr"],), "files_held", "customer",
                                          context={"refused": refused}), now)

    def tell(self, row, decision: policy.Decision, now: datetime, actor: str, in_reply_to: str | None = None) -> None:
        """A decision that changes nothing on the complaint (a status question): its events and
        mails only, so no field, clock or `next_due` moves."""
        assert not decision.changes, "tell() is for decisions without changes; use apply()"
        for ev in decision.events:
            self.store.add_event(row["id"], now, actor, ev.kind, **ev.detail)
        for mail in decision.mails:
            self.queue(row, mail, now, in_reply_to=in_reply_to)

    def queue(self, complaint, mail: policy.Mail, now: datetime, *, staff_name: str | None = None,
              in_reply_to: str | None = None, message_row: int | None = None, actor: str | None = None) -> str:
        """Render a mail, and write it to the outbox and the complaint's messages. `actor`: who
        decided it; a staff member whose files it could not carry to the customer is told."""
        if self.silent:  # the timeline says what would have gone; nothing is queued
            if complaint:
                self.store.add_event(complaint["id"], now, "maildesk", "not_sent", mail=mail.kind,
                                     audience=mail.audience, why="imported history")
            return ""
        ref = complaint["ref"] if complaint else None
        refused = {a: why for a in mail.to for ok, why in [addresses.sendable(a)] if not ok}
        if refused:  # checked where the address entered; this keeps any other one out of the outbox
            if complaint:
                self.store.add_event(complaint["id"], now, "maildesk", "not_sent", mail=mail.kind,
                                     audience=mail.audience, why="; ".join(refused.values()))
            log_event("mail_not_queued", ref, severity=30, kind=mail.kind, audience=mail.audience,
                      why="; ".join(refused.values()))
            mail = replace(mail, to=tuple(a for a in mail.to if a not in refused))
            if not mail.to:
                return ""
        automatic = mail.audience == "customer" and AUTO_SUBMITTED.get(mail.kind, "auto-generated") is not None
        sent = self.store.recent_auto_replies(mail.to[0], now - budgets.WINDOW) if automatic else 0
        if budgets.echo_suppressed(mail.kind, automatic, sent, self.cfg.policy.max_auto_replies_per_hour):
            if complaint:
                self.store.add_event(complaint["id"], now, "maildesk", "auto_mail_suppressed", mail=mail.kind)
            log_event("auto_mail_suppressed", ref, severity=30, kind=mail.kind, to=mail.to[0])
            return ""
        lang = complaint["lang"] if complaint and mail.audience == "customer" else self.cfg.policy.language
        context = self.context(complaint, now)
        context.update(mail.context)
        context.setdefault("staff_name", staff_name)
        attachments = ()
        if mail.kind == "dossier":  # the record of the written complaint, attached (service/dossier.py)
            context.update(dossier.record(self.store, complaint["id"]))
        context.setdefault("files", [])
        if mail.kind == "ack" and message_row is not None:  # files the customer should send another way
            context["refused"] = mail_files.refused(self.cfg, self.store, complaint["id"], message_row)
        rendered = self.templates.render(mail.template, lang, **context)
        if mail.kind == "dossier":
            attachments, rendered = (dossier.attachment(ref, rendered.html),), replace(rendered, html=None)
        carried = None
        if mail.carry and complaint:
            rendered, carried = self._carry(complaint, mail, lang, context, rendered, message_row, now)
        message_id = new_message_id(self.cfg.support_domain, ref)
        cc = self.parties.cc_for(complaint, mail)  # issue 16 Cc: the customer's Cc, a staff reply's own (parties.py)
        thread = queries.threading(self.store, complaint["id"], mail.audience) if complaint else None
        raw, rendered = self._compose(mail, rendered, cc, message_id, now, in_reply_to, thread, ref, attachments,
                                      carried, lambda: self.templates.render(mail.template, lang, **context))
        self.store.insert("outbox", {
            "message_id": message_id, "complaint_id": complaint["id"] if complaint else None,
            "kind": mail.kind, "audience": mail.audience, "routine": int(mail.routine),
            "mail_from": self.cfg.smtp.from_address, "rcpt": json.dumps([*mail.to, *cc]),  # the envelope: Cc too
            "rcpt_key": mailbox_key(mail.to[0]) if mail.audience == "customer" and len(mail.to) == 1 else None,
            "subject": rendered.subject, "raw": raw, "status": "queued", "attempts": 0,
            "next_attempt_at": iso(now), "created_at": iso(now)})
        if complaint:
            self.store.insert("messages", {
                "complaint_id": complaint["id"], "message_id": message_id, "direction": "out",
                "kind": f"{mail.audience}:{mail.kind}", "at": iso(now), "from_addr": self.cfg.support_address,
                "to_addrs": ", ".join(mail.to), "subject": rendered.subject, "body": rendered.text,
                "cc_addrs": json.dumps(cc) if cc else None})  # issue 16 Cc
        log_event("mail_queued", ref, kind=mail.kind, audience=mail.audience, template=mail.template)
        if carried and carried.held:
            self._files_held(complaint, mail, carried, now, actor)
        return message_id

    def _carry(self, complaint, mail: policy.Mail, lang: str, context: dict, rendered, message_row, now):
        """The stored files a mail carries (`Mail.carry`, mail_files.py) and its text listing them.
        The listing never stops the mail: if it cannot be rendered, the text goes alone."""
        room = len(rendered.text.encode()) * 3 + len((rendered.html or "").encode()) * 3 + 8192  # QP, listing
        carried = mail_files.carry(self.cfg, self.store, complaint, mail.carry, message_row, room)
        withheld = [{"number": f.number, "filename": f.filename, "size": f.size, "why": h.name}
                    for f, h in carried.held if h.reason == "withheld"]
        if withheld:  # the customer's files a seller may not see: the team are told (seller_desk.py)
            self.store.add_event(complaint["id"], now, "maildesk", "evidence_withheld", mail=mail.kind,
                                 files=withheld)
        if carried.listing:
            try:
                rendered = self.templates.render(mail.template, lang, **{**context, "files": carried.listing})
                context["files"] = carried.listing
            except Exception:
                log_event("files_not_listed", complaint["ref"], severity=40, exc_info=True, kind=mail.kind)
                return rendered, None
        return rendered, carried

    def _compose(self, mail: policy.Mail, rendered, cc, message_id, now, in_reply_to, thread, ref, attachments,
                 carried, render_again) -> tuple[bytes, object]:
        """The mail's bytes, never over `[attachments] max_message_mb`: if the estimate was short,
        its last carried file stays behind (listed) and the text is rendered again. Returns the
        bytes and the text as sent."""
        while True:
            raw = compose(
                from_addr=self.cfg.smtp.from_address, from_name=self.cfg.smtp.from_name,
                to=list(mail.to), cc=cc, subject=rendered.subject, text=rendered.text, html=rendered.html,
                message_id=message_id, date=now, in_reply_to=in_reply_to or (thread.parent if thread else None),
                references=thread.chain if thread else [],
                auto_submitted=AUTO_SUBMITTED.get(mail.kind, "auto-generated"),
                reply_to=self.cfg.smtp.from_address, reference=ref,
                attachments=attachments + (carried.attachments if carried else ()))
            if not (carried and carried.attached and len(raw) > self.cfg.attachments.max_message_mb * 1024 * 1024):
                return raw, rendered
            carried.drop_last()
            rendered = render_again()

    def _files_held(self, complaint, mail: policy.Mail, carried: mail_files.Carried, now: datetime,
                    actor: str | None) -> None:
        """Files a mail could not carry: on the timeline, and the staff member whose files stayed
        out of what the customer got is told which and why (the customer got the text)."""
        held = [{"filename": item["filename"], "reason": item["state"], "detail": item["detail"]}
                for item in carried.listing if item["state"] != "attached"]
        self.store.add_event(complaint["id"], now, "maildesk", "files_held", mail=mail.kind,
                             audience=mail.audience, files=held)
        if mail.audience == "customer" and actor and "@" in actor and mail.kind in ("relay", "ask", "resolution"):
            self.queue(complaint, policy.Mail("staff_files_held", (actor,), "notify", "staff",
                                              context={"held": held, "to_customer": mail.kind}), now)

    def context(self, complaint, now: datetime) -> dict:
        """What every template about `complaint` may use (also the dossier's page)."""
        ctx = {"now": now, "cfg": self.cfg, "support_address": self.cfg.smtp.from_address,
               "brand": self.cfg.smtp.from_name}
        if complaint is None:
            return ctx
        c = dict(complaint)
        for key, value in list(c.items()):
            if key.endswith("_at") or key in ("first_contact", "next_due"):
                c[key] = from_iso(value)
        items = queries.shown_history(self.store, complaint["id"], UNSHOWN, HISTORY)
        ctx.update(complaint=c, ref=complaint["ref"], tag=refs.tag(complaint["ref"]),
                   subject=complaint["subject"] or "", level=complaint["level"],
                   deadlines=policy.deadlines(c["first_contact"], self.cfg),
                   history=items, latest=next((h for h in items if h["kind"] in ("customer", "party")), None),
                   cc=parties.stored(complaint),  # issue 16 Cc: staff see who is copied
                   first_message=queries.first_customer_message(self.store, complaint["id"]))
        return ctx
