"""The workflow's seller side (P11, P12): linking complaints to sellers,
writing to them on the customer's behalf, threading their answers, the
outreach clock (reminder halfway, failure at the deadline) and the
customer's request for the seller's direct contact details.

Everything here runs inside the caller's transaction, like `workflow.py`;
the only exception is `sweep`, a clock job that opens its own.
A seller never sees the customer's address: seller templates use no
customer field, staff text is scrubbed of it, and every queued seller mail
is checked before the transaction can commit.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from email import message_from_bytes, policy as email_policy

from maildesk.adapters import webhook
from maildesk.core import commands, parties, policy, refs, sellers, threads
from maildesk.core.commands import ForSeller
from maildesk.core.policy import Decision, Mail
from maildesk.core.robots import CUSTOMER, SELLER
from maildesk.inbound.parse import InboundMail
from maildesk.logs import event as log_event
from maildesk.service.seller_sanctions import Sanctions
from maildesk.store import complaints as queries, merges
from maildesk.store.complaints import complaint_from_row
from maildesk.store.db import StoreUnwell, from_iso, iso
from maildesk.store.sellers import AddressLookup, Registry
REDACTED = {"fr": "[adresse du client masquée]", "en": "[customer address withheld]"}


class SellerLeak(RuntimeError):
    """A mail to a seller carried the customer's address: never committed."""


def leaks(raw: bytes, secret: str) -> bool:
    """Does a composed mail show the address `secret`, in any spelling, in its
    headers, any decoded text part or any attachment's file name?"""
    pattern = sellers.address_pattern(secret)
    if pattern.found(raw.decode("utf-8", "replace")):
        return True
    msg = message_from_bytes(raw, policy=email_policy.default)
    seen = [str(v) for v in msg.values()]
    for part in msg.walk():
        seen += [str(v) for v in part.values()] if part is not msg else []
        seen.append(part.get_filename() or "")
        if part.get_content_maintype() == "text":
            seen.append(part.get_content())
    return any(pattern.found(text) for text in seen)


class SellerDesk:
    """Takes the workflow it saves through (apply, queue, store_message, and the intake for a
    seller who writes as a customer) as a constructor argument: no import of workflow.py."""

    def __init__(self, workflow):
        self.wf = workflow
        self.cfg = workflow.cfg
        self.store = workflow.store
        self.registry = Registry(self.store)
        self.sanctions = Sanctions(workflow, self.registry)
        # the staff commands carried out here (commands.REGISTRY marks them for_seller)
        self.handlers = {"seller": self._link_command, "contact-seller": self._contact_command,
                         "seller-failed": self._failed_command, "uncooperative": self._uncooperative_command}

    def clock_jobs(self) -> list:
        return [self.sweep, lambda now: webhook.deliver_due(self.store, now)]

    def addresses(self) -> AddressLookup:
        return AddressLookup(self.store)

    # --- hints for new complaints ------------------------------------------------
    def hint(self, mail: InboundMail) -> str | None:
        """Registered shops or seller addresses the customer's text names, with
        the seller's standing when admins restricted or terminated it."""
        names, addresses = self.registry.names(), self.registry.addresses()
        if not names:
            return None
        keys = sellers.mentioned(f"{mail.subject}\n{mail.reply_text}", names, addresses)
        ids = list(dict.fromkeys(names.get(k) or addresses[k] for k in keys))
        return "; ".join(self.describe(self.registry.get(i)) for i in ids[:3]) or None

    def describe(self, seller) -> str:
        """One line on a seller for staff; the wording is `staff_seller_hint.txt`."""
        t = self.wf.templates
        lang = self.cfg.policy.language
        template = t.env.select_template([f"{x}/staff_seller_hint.txt"
                                          for x in dict.fromkeys((lang, t.default_lang, "fr", "en"))])
        text = template.render(lang=lang, seller=sellers.seller_card(seller), status=seller["status"],
                               status_at=from_iso(seller["status_at"]), status_reason=seller["status_reason"])
        return " ".join(text.split())

    # --- mail from a registered seller -------------------------------------------------
    def receive(self, mail: InboundMail, raw: bytes, tagged, by_headers, arrived_at: datetime,
                now: datetime) -> str | None:
        """A seller's answer joins a complaint only when that complaint is linked
        to this very seller (by tag or reply headers); anything else goes to staff."""
        seller = self.registry.by_address(mail.from_addr)
        links = {c["id"]: self.registry.address_of(c["seller_id"]) for c in (*tagged, *by_headers)
                 if c["seller_id"]}
        # a merged complaint's answer joins its survivor, where its outreach moved (store/merges.py)
        complaint = merges.survivor(self.store, threads.choose(mail.from_addr, SELLER, tagged, by_headers, links))
        if complaint is None:
            own = threads.choose(mail.from_addr, CUSTOMER, tagged, by_headers)
            if own is not None or not self._ours(mail, tagged, by_headers):
                # a seller who is a customer too: their own complaint, or a new one about a purchase
                return self._as_customer(mail, raw, seller, tagged, by_headers, arrived_at, now)
            return self._unthreaded(mail, raw, seller, tagged, arrived_at, now)
        row = self.wf.store_message(complaint["id"], mail, raw, "seller", arrived_at)
        late = False
        for o in self.registry.outreaches(complaint["id"], seller["id"]):
            if o["status"] == "waiting" and arrived_at >= from_iso(o["due_at"]):
                self._fail(complaint, seller, [o], "deadline", "maildesk", now)  # the sweep had not run yet
                o = self.registry.outreach(o["id"])
            if o["status"] == "waiting":
                self.registry.update_outreach(o["id"], status="answered", answered_at=arrived_at)
            elif o["status"] == "failed" and o["answered_at"] is None:
                self.registry.update_outreach(o["id"], answered_at=arrived_at)
                late = self.registry.late_answer(o["id"]) or late
        d = Decision()
        d.event("seller_answered", seller=seller["id"], late=late or None)
        # the seller's files go to the team with their answer, never on to the customer: staff decide
        d.tell_staff(policy.handlers(complaint_from_row(complaint), self.cfg), "staff_seller_reply", "notify",
                     carry="message", seller=sellers.seller_card(seller), late=late,
                     text=(mail.reply_text or mail.text or "").strip()[:5000])
        self.wf.apply(complaint, d, now, actor=mail.from_addr, message_row=row)
        self.registry.event(seller["id"], now, mail.from_addr, "answered", complaint_id=complaint["id"],
                            ref=complaint["ref"], late=late or None)
        log_event("seller_reply", complaint["ref"], seller=seller["id"], late=late or None)
        return complaint["ref"]

    def _ours(self, mail: InboundMail, tagged, by_headers) -> bool:
        """Does the mail carry one of our reference tags, or answer a mail we sent?"""
        if tagged or by_headers or refs.tag_pattern(self.cfg.policy.reference_prefix).search(mail.subject or ""):
            return True
        return queries.we_queued_any(self.store, [*mail.in_reply_to, *mail.references])

    def _as_customer(self, mail, raw, seller, tagged, by_headers, arrived_at, now) -> str:
        ref = self.wf.intake.customer(mail, raw, CUSTOMER, tagged, by_headers, arrived_at, now)
        self.registry.event(seller["id"], now, mail.from_addr, "wrote_as_customer",
                            complaint_id=self.store.complaint(ref)["id"], ref=ref)
        log_event("seller_as_customer", ref, seller=seller["id"])
        return ref

    def _unthreaded(self, mail, raw, seller, tagged, arrived_at, now) -> None:
        self.wf.store_message(None, mail, raw, "seller", arrived_at)
        claimed = [c["ref"] for c in tagged]
        self.registry.event(seller["id"], now, mail.from_addr, "unthreaded_mail", subject=mail.subject[:120],
                            claimed=",".join(claimed) or None)
        self.wf.queue(None, Mail("staff_seller_unthreaded", tuple(self.cfg.teams.customer_service), "notify",
                                 "staff", context={"seller": sellers.seller_card(seller), "claimed": claimed,
                                                   "original_subject": mail.subject[:150],
                                                   "text": (mail.reply_text or mail.text or "").strip()[:5000]}),
                      now)
        log_event("seller_mail_unthreaded", seller=seller["id"], claimed=",".join(claimed) or None)
        return None

    # --- staff commands ---------------------------------------------------------------
    def command(self, complaint, command: ForSeller, actor: str, now: datetime) -> None:
        """Carry out a seller command (commands.REGISTRY). The staff text goes with it
        (facts for the seller, a reason) and never reaches the customer."""
        linked = self.registry.get(complaint["seller_id"])
        if command.name != "seller" and linked is None:
            error = f"#{command.name}: no seller is linked to {complaint['ref']} (use #seller ID-or-address first)"
        else:
            error = self.handlers[command.name](complaint, linked, command, actor, now)
        if error:
            self.wf.queue(complaint, Mail("staff_command_error", (actor,), "command_error", "staff", context={
                "errors": [error], "commands": commands.help_text(),
                "original_subject": complaint["subject"][:150], "ref": complaint["ref"]}), now)
            self.store.add_event(complaint["id"], now, actor, "command_rejected", command=command.name,
                                 error=error)

    def _link_command(self, complaint, linked, command: ForSeller, actor: str, now: datetime) -> str | None:
        return self.link(complaint, command.arg, actor, now, command.text)

    def _contact_command(self, complaint, linked, command: ForSeller, actor: str, now: datetime) -> None:
        self.contact(complaint, linked, "\n\n".join(t for t in (command.arg, command.text) if t), actor, now)

    def _failed_command(self, complaint, linked, command: ForSeller, actor: str, now: datetime) -> None:
        waiting = self.registry.outreaches(complaint["id"], linked["id"], status="waiting")
        self._fail(complaint, linked, waiting, "staff", actor, now, note=command.text)

    def _uncooperative_command(self, complaint, linked, command: ForSeller, actor: str, now: datetime) -> None:
        reason = " ".join(t for t in (command.arg, command.text) if t)[:500]
        self.sanctions.strike(linked["id"], "reported", now, actor, now, complaint=complaint, reason=reason)

    def link(self, complaint, key: str, actor: str, now: datetime, facts: str = "") -> str | None:
        """Link a complaint to a seller and write to them. Returns an error, or None."""
        seller = self.registry.find(key)
        if seller is None:
            return f"#seller: no registered seller {key!r} (id or address; see `maildesk seller list`)"
        previous = complaint["seller_id"]
        if previous and previous != seller["id"]:
            for o in self.registry.outreaches(complaint["id"], previous, status="waiting"):
                self.registry.update_outreach(o["id"], status="cancelled")
        if previous != seller["id"]:
            self.store.update("complaints", complaint["id"], {"seller_id": seller["id"]})
            self.store.add_event(complaint["id"], now, actor, "seller_linked", seller=seller["id"],
                                 previous=previous, status=seller["status"])
            self.registry.event(seller["id"], now, actor, "linked", complaint_id=complaint["id"],
                                ref=complaint["ref"])
            complaint = self.store.complaint_by_id(complaint["id"])
        self.contact(complaint, seller, facts, actor, now)
        return None

    # --- outreach ------------------------------------------------------------------------
    def contact(self, complaint, seller, facts: str, actor: str, now: datetime) -> int:
        """P11: write to the seller on the customer's behalf. A message while an
        outreach waits adds to it (same deadline); otherwise a new one starts."""
        lang = self.cfg.policy.language
        facts = (facts or "").strip()
        for secret in (complaint["customer_addr"], *parties.stored(complaint)):  # nor her Cc (issue 16)
            facts = sellers.redact(facts, secret, REDACTED.get(lang, REDACTED["en"]))
        waiting = self.registry.outreaches(complaint["id"], seller["id"], status="waiting")
        earlier = self.registry.outreaches(complaint["id"], seller["id"])
        if waiting:
            outreach = waiting[-1]
        else:
            outreach = self.registry.outreach(self.registry.open_outreach(
                complaint["id"], seller["id"], actor, now, self.cfg.sellers.seller_response_hours))
        due = from_iso(outreach["due_at"])
        # the customer's files, cleaned (outbound/evidence.py); a follow-up only those sent since the
        # last mail to this seller, who has the others already
        since = self.registry.last_outreach_mail(complaint["id"], seller["address"]) if earlier else None
        mark = max((e["id"] for e in self.store.timeline(complaint["id"])), default=0)
        message_id = self.wf.queue(complaint, Mail(
            "seller_outreach", (seller["address"],), "outreach", "seller", carry="evidence",
            context={"seller": sellers.seller_card(seller), "facts": facts, "due": due,
                     "hours": self.cfg.sellers.seller_response_hours, "followup": bool(earlier)}), now,
            message_row=since)
        self._guard(message_id, complaint)
        self._withheld_told(complaint, seller, mark, now)
        self.store.add_event(complaint["id"], now, actor, "seller_contacted", seller=seller["id"],
                             outreach=outreach["id"], due=iso(due), text=facts[:500] or None)
        self.registry.event(seller["id"], now, actor, "contacted", complaint_id=complaint["id"],
                            ref=complaint["ref"], due=iso(due))
        log_event("seller_contacted", complaint["ref"], seller=seller["id"], due=iso(due))
        return outreach["id"]

    def _withheld_told(self, complaint, seller, mark: int, now: datetime) -> None:
        """The team learn which of the customer's files the seller was not sent, and why (the
        `evidence_withheld` event the outreach just left, after event `mark`)."""
        withheld = [json.loads(e["detail"]) for e in self.store.timeline(complaint["id"])
                    if e["kind"] == "evidence_withheld" and e["id"] > mark]
        files = [f for e in withheld if e.get("mail") == "outreach" for f in e.get("files", [])]
        if files:
            d = Decision()
            d.tell_staff(policy.handlers(complaint_from_row(complaint), self.cfg), "staff_evidence_withheld",
                         "notify", seller=sellers.seller_card(seller), withheld=files)
            self.wf.apply(complaint, d, now, actor="maildesk")
            log_event("evidence_withheld", complaint["ref"], seller=seller["id"], files=len(files))

    def _guard(self, message_id: str, complaint) -> None:
        if not message_id:
            return  # silent mode: nothing was queued
        row = queries.outbox_copy(self.store, message_id)
        if row is None or sellers.address_pattern(complaint["customer_addr"]).found(row["rcpt"]):
            return  # the seller's own address is a spelling of the customer's: nothing to keep from them
        if leaks(row["raw"], complaint["customer_addr"]):
            raise SellerLeak(f"a mail to a seller on {complaint['ref']} carried the customer's address")
        if any(leaks(row["raw"], a) for a in parties.stored(complaint)):  # her Cc list is hers (issue 16)
            raise SellerLeak(f"a mail to a seller on {complaint['ref']} carried an address of the customer's Cc")

    def sweep(self, now: datetime, batch: int = 200) -> int:
        """The outreach clock job: reminders halfway, failure at the deadline, each once.
        One outreach that fails (an exception) rolls back alone, is logged and recorded,
        and waits an hour; the others go on."""
        total = 0
        while True:
            with self.store.transaction():
                rows = self.registry.due_outreach(now, batch)
                for o in rows:
                    try:
                        with self.store.transaction():  # a savepoint: this outreach alone
                            self.wf.at("outreach_step", outreach=o)
                            self._step(o, now)
                    except StoreUnwell:
                        raise  # the store is unwell, not this outreach
                    except Exception as e:
                        self._step_failed(o, now, e)
            total += len(rows)
            if len(rows) < batch:
                return total

    def _step_failed(self, o, now: datetime, error: Exception) -> None:
        log_event("seller_sweep_failed", severity=40, exc_info=True, outreach=o["id"], seller=o["seller_id"])
        retry = now + timedelta(hours=1)  # not due again at once: the loop moves on, the next ticks retry
        self.store.update("outreach", o["id"], {"next_due": iso(retry)})
        self.store.add_event(o["complaint_id"], now, "maildesk", "seller_sweep_failed", outreach=o["id"],
                             seller=o["seller_id"], error=f"{type(error).__name__}: {error}"[:300],
                             retry_at=iso(retry))

    def _step(self, o, now: datetime) -> None:
        complaint = self.store.complaint_by_id(o["complaint_id"])
        if complaint["status"] in ("resolved", "closed") or complaint["seller_id"] != o["seller_id"]:
            self.registry.update_outreach(o["id"], status="cancelled")
            self.store.add_event(complaint["id"], now, "maildesk", "seller_outreach_cancelled",
                                 seller=o["seller_id"], why=complaint["status"] if complaint["seller_id"] ==
                                 o["seller_id"] else "another seller was linked")
            return
        step = sellers.outreach_step(o["status"], o["reminded_at"], from_iso(o["remind_at"]),
                                     from_iso(o["due_at"]), now)
        seller = self.registry.get(o["seller_id"])
        if step == "fail":
            self._fail(complaint, seller, [o], "deadline", "maildesk", now)
        elif step == "remind":
            due = from_iso(o["due_at"])
            self.registry.update_outreach(o["id"], reminded_at=now)
            # no files: the reminder points back to the outreach that carried them
            message_id = self.wf.queue(complaint, Mail("seller_reminder", (seller["address"],), "reminder", "seller",
                                                       context={"seller": sellers.seller_card(seller), "due": due}),
                                       now)
            self._guard(message_id, complaint)
            self.store.add_event(complaint["id"], now, "maildesk", "seller_reminded", seller=seller["id"],
                                 due=iso(due))
            self.registry.event(seller["id"], now, "maildesk", "reminded", complaint_id=complaint["id"],
                                ref=complaint["ref"], due=iso(due))
        else:
            self.registry.update_outreach(o["id"])  # only recompute next_due

    def _fail(self, complaint, seller, outreaches, reason: str, actor: str, now: datetime, note: str = "") -> None:
        """Outreach failed (deadline, or staff say so): recorded; an unanswered one
        counts against the seller; a customer who already asked gets the details."""
        if not outreaches:  # staff tried another way (phone...): record a failed attempt
            outreaches = [self.registry.outreach(self.registry.open_outreach(
                complaint["id"], seller["id"], actor, now, self.cfg.sellers.seller_response_hours))]
        for o in outreaches:
            self.registry.update_outreach(o["id"], status="failed", failed_at=now, failed_reason=reason)
        pending = queries.request_facts(self.store, complaint["id"]).pending()
        state = complaint_from_row(complaint)
        d = Decision()
        d.event("seller_outreach_failed", seller=seller["id"], reason=reason, note=note[:500] or None)
        if pending:
            sellers.disclose(d, state, seller, now, trigger="asked before outreach failed")
        d.tell_staff(policy.handlers(state, self.cfg), "staff_seller_failed", "notify",
                     seller=sellers.seller_card(seller), reason=reason, disclosed=pending)
        self.wf.apply(complaint, d, now, actor=actor)
        self.registry.event(seller["id"], now, actor, "outreach_failed", complaint_id=complaint["id"],
                            ref=complaint["ref"], reason=reason)
        if pending:
            self.registry.event(seller["id"], now, "maildesk", "details_disclosed", complaint_id=complaint["id"],
                                ref=complaint["ref"])
        log_event("seller_outreach_failed", complaint["ref"], seller=seller["id"], reason=reason)
        if reason == "deadline":
            for o in outreaches:
                self.sanctions.strike(seller["id"], "unanswered", from_iso(o["due_at"]), "maildesk", now,
                                      complaint=complaint, outreach_id=o["id"])

    # --- the customer asks for the seller's details (P12) ----------------------------------
    def customer_message(self, complaint, state: policy.Complaint, text: str, now: datetime) -> Decision:
        """The decision on a customer's message: the policy's, with P12's answer when it asks
        for the seller's details (sellers.customer_message decides over the stored facts)."""
        if not sellers.asks_for_contact(text):
            return policy.customer_message(state, now, self.cfg, text)
        seller = self.registry.get(complaint["seller_id"])
        failed = bool(seller) and self.registry.failed(complaint["id"], seller["id"])
        last = self.registry.outreaches(complaint["id"], seller["id"])[-1:] if seller else []
        facts = queries.request_facts(self.store, complaint["id"], sellers.outreach_state(
            seller["id"] if seller else None, (last[0]["id"], last[0]["status"]) if last else None))
        decision = sellers.customer_message(state, now, self.cfg, text, seller, failed, facts)
        if any(e.kind == "seller_details_disclosed" for e in decision.events):
            self.registry.event(seller["id"], now, "maildesk", "details_disclosed", complaint_id=complaint["id"],
                                ref=complaint["ref"])
            log_event("seller_details_disclosed", complaint["ref"], seller=seller["id"])
        return decision

    def asks_for_contact(self, mail: InboundMail) -> bool:
        return sellers.asks_for_contact(mail.reply_text)
