"""Inbound mail: parse it, find who wrote (customer, staff, seller, robot,
an unlisted colleague) and which complaint it joins, let the core decide, and
hand the decision to the workflow to save. Runs inside the caller's
transaction, like everything the workflow does.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from maildesk.core import (
    addresses, budgets, categories, commands, parties, policy, refs, robots, staff, status_request, threads, trust,
)
from maildesk.core.addresses import mailbox_key
from maildesk.core.commands import Canned, ForMerge, ForSeller
from maildesk.inbound.parse import InboundMail, ParseError, parse
from maildesk.logs import event as log_event
from maildesk.service.canned import CannedAnswers
from maildesk.store import complaints as queries, merges
from maildesk.store.complaints import complaint_from_row
from maildesk.store.db import iso

UNLISTED_TOLD_EVERY = timedelta(hours=24)  # an unlisted colleague is told how to be added once a day


@dataclass(frozen=True)
class Outcome:
    action: str  # processed | duplicate | quarantine
    ref: str | None = None
    reason: str = ""
    message_id: str | None = None


def _with_omitted(mail: InboundMail, omitted: tuple) -> InboundMail:
    """The mail with the attachments that were not fetched (payload None) after those that were."""
    return replace(mail, attachments=(*mail.attachments, *omitted)) if omitted else mail


class Intake:
    def __init__(self, workflow, sellers):
        self.wf = workflow
        self.cfg = workflow.cfg
        self.store = workflow.store
        self.sellers = sellers
        self.notices = workflow.notices
        self.canned = CannedAnswers(workflow)  # #template NAME (canned.py)

    def receive(self, raw: bytes, arrived_at: datetime, now: datetime, omitted: tuple = ()) -> Outcome:
        """Parse, classify, thread and apply one message.
        `omitted`: attachments of a large message that were not fetched (imap.Fetched.omitted),
        recorded by name, type and size."""
        try:
            mail = _with_omitted(parse(raw), omitted)
        except ParseError as e:
            return Outcome("quarantine", reason=e.reason)
        if self.store.seen(mail.message_id):
            return Outcome("duplicate", message_id=mail.message_id)
        sender = robots.classify(mail, self.cfg, self.sellers.addresses())
        tagged, by_headers = self._claimed(mail)
        if sender.role == robots.ROBOT:
            ref = self._robot(mail, raw, sender.reason, tagged, by_headers, arrived_at, now)
        elif sender.role == robots.STAFF:
            ref = self._staff(mail, raw, tagged, by_headers, arrived_at, now)
        elif sender.role == robots.SELLER:
            ref = self.sellers.receive(mail, raw, tagged, by_headers, arrived_at, now)
        elif sender.role == robots.UNLISTED:
            ref = self._unlisted(mail, raw, tagged, by_headers, arrived_at, now)
        else:
            ref = self.customer(mail, raw, sender.role, tagged, by_headers, arrived_at, now)
        self.store.insert("processed", {"message_id": mail.message_id, "at": iso(now),
                                        "outcome": sender.role, "ref": ref})
        log_event("received", ref, sender=mail.from_addr, role=sender.role, size=len(raw),
                  message_id=mail.message_id)
        return Outcome("processed", ref=ref, message_id=mail.message_id)

    def _claimed(self, mail: InboundMail):
        """The complaints the mail names: by reference tag in its subject, and by its reply headers."""
        tagged = [c for r in refs.find_references(self.cfg.policy.reference_prefix, mail.subject)
                  if (c := self.store.complaint(r))]
        # by the complaint a Message-ID first belonged to: the sender is a party to that one, and a
        # merged complaint is followed to its survivor once chosen (`_survivor`)
        return tagged, merges.origins_of_message_ids(self.store, [*mail.in_reply_to, *mail.references])

    def _survivor(self, complaint):
        """The complaint mail chosen for `complaint` joins: itself, or the one it was merged into."""
        return merges.survivor(self.store, complaint)

    def customer(self, mail: InboundMail, raw: bytes, role: str, tagged, by_headers, arrived_at, now) -> str:
        complaint = self._survivor(threads.choose(mail.from_addr, role, tagged, by_headers))
        if threads.foreign_reference(mail.from_addr, role, tagged) and complaint is None:
            log_event("foreign_reference", sender=mail.from_addr,
                      claimed=",".join(c["ref"] for c in tagged))
        if complaint is None:
            return self._open(mail, raw, arrived_at, now)
        if mail.from_addr != complaint["customer_addr"] and parties.is_party(complaint, mail.from_addr):  # her Cc
            return self.wf.parties.message(complaint, mail, raw, arrived_at, now)
        complaint = self.wf.parties.note_customer_cc(complaint, mail, now)  # new ones in her Cc
        if status_request.is_status_request(mail.reply_text):  # issue 18 item 5: no clock moves, no one told
            self.wf.store_message(complaint["id"], mail, raw, "status_request", arrived_at)
            self.wf.tell(complaint, status_request.answer(complaint_from_row(complaint), now, self.cfg), now,
                         actor=mail.from_addr, in_reply_to=mail.message_id)
            log_event("status_requested", complaint["ref"], sender=mail.from_addr)
            return complaint["ref"]
        row = self.wf.store_message(complaint["id"], mail, raw, "customer", arrived_at)
        decision = self.sellers.customer_message(complaint, complaint_from_row(complaint), mail.reply_text, now)
        self.wf.apply(complaint, decision, now, actor=mail.from_addr, message_row=row)
        log_event("customer_reply", complaint["ref"], sender=mail.from_addr)
        return complaint["ref"]

    def _open(self, mail: InboundMail, raw: bytes, arrived_at: datetime, now: datetime) -> str:
        prefix = self.cfg.policy.reference_prefix.upper()
        while True:
            ref = refs.new_reference(prefix)
            if self.store.complaint(ref) is None:
                break
        key = mailbox_key(mail.from_addr)
        intake = self._intake(mail.from_addr, key, now)
        row_id = self.store.insert("complaints", {
            "ref": ref, "customer_addr": mail.from_addr, "customer_key": key, "customer_name": mail.from_name,
            "subject": refs.without_tags(prefix, mail.subject),  # another complaint's tag is not this one's
            "lang": mail.language, "order_number": mail.order_number,
            "level": 1, "status": "open", "first_contact": iso(arrived_at), "opened_at": iso(now),
            "category": categories.suggest(mail.subject, mail.text, self.cfg.categories),
        })
        complaint = self.store.complaint_by_id(row_id)
        message_row = self.wf.store_message(row_id, mail, raw, "customer", arrived_at)
        complaint = self.wf.parties.note_customer_cc(complaint, mail, now)  # issue 16: her Cc, kept
        reachable, why = addresses.sendable(mail.from_addr)
        decision = policy.open_complaint(complaint_from_row(complaint), now, self.cfg, send_ack=intake.send_ack,
                                         notify_staff=intake.notify_each, seller_hint=self.sellers.hint(mail),
                                         contact_request=self.sellers.asks_for_contact(mail),
                                         unreachable=None if reachable else why)
        if not reachable:
            log_event("unreachable_address", ref, severity=30, reason=why)
        self.wf.apply(complaint, decision, now, actor=mail.from_addr, message_row=message_row)
        log_event("complaint_opened", ref, customer=mail.from_addr, lang=mail.language,
                  order=mail.order_number, category=complaint["category"])
        if not intake.send_ack:
            log_event("ack_suppressed", ref, severity=30, customer=mail.from_addr, reason="flood")
            self._flood(complaint, mail, key, intake, now)
        return ref

    def _intake(self, address: str, key: str, now: datetime) -> budgets.Intake:
        """What a new complaint from this mailbox may cost: the store counts, budgets decides."""
        hour_ago = now - budgets.WINDOW
        return budgets.new_complaint(
            acks_last_hour=self.store.recent_auto_replies(address, hour_ago),
            acks_last_day=self.store.recent_auto_replies(address, now - timedelta(hours=24)),
            held_last_hour=self.notices.held_since("staff_flood", key, hour_ago),
            cap_per_hour=self.cfg.policy.max_auto_replies_per_hour)

    def _flood(self, complaint, mail: InboundMail, key: str, intake: budgets.Intake, now: datetime) -> None:
        """A complaint past its mailbox's caps: staff get one notice an hour for the mailbox's
        flood, the admins one alert an hour for every flood (notices.py)."""
        opened = self.store.opened_since(mail.from_addr, now - budgets.WINDOW)
        facts = {"address": mail.from_addr, "opened": opened, "ref": complaint["ref"],
                 "cap": self.cfg.policy.max_auto_replies_per_hour, "original_subject": mail.subject[:150]}
        team = policy.handlers(complaint_from_row(complaint), self.cfg)
        if team:
            self.notices.raise_notice(key, policy.Mail("staff_flood", team, "notify", "staff", context=facts),
                                      now, complaint["id"])
        if intake.flood_starts:
            self.notices.raise_notice("*", policy.Mail("admin_flood", tuple(self.cfg.teams.admins), "alert",
                                                       "admin", context=facts), now, complaint["id"])
            log_event("flood_reported", complaint["ref"], severity=30, customer=mail.from_addr, opened=opened)

    def _robot(self, mail: InboundMail, raw: bytes, reason: str, tagged, by_headers, arrived_at, now) -> str | None:
        """Automatic mail joins a complaint only through a Message-ID of ours that it bounces or
        answers, or when its sender is a party; otherwise it is kept on its own, shown to no one."""
        ours = self.store.complaints_we_wrote_in([*mail.bounce_of, *mail.in_reply_to, *mail.references])
        claimed = [*tagged, *by_headers]
        linked = {c["id"]: self.sellers.registry.address_of(c["seller_id"]) for c in claimed if c["seller_id"]}
        complaint = self._survivor(threads.choose_automatic(mail.from_addr, mail.from_addr in self.cfg.staff, ours,
                                                            claimed, linked))
        # a feedback report: the customer marked our mail as spam (counted in the digest)
        kind = "spam_report" if mail.feedback else "bounce" if mail.bounce_of or "delivery" in reason else "auto"
        if complaint is None:
            self.wf.store_message(None, mail, raw, kind, arrived_at)  # kept, never lost, nobody's news
            log_event("automatic_unthreaded", sender=mail.from_addr, reason=reason,
                      claimed=",".join(sorted({c["ref"] for c in claimed})) or None)
            return None
        self.wf.store_message(complaint["id"], mail, raw, kind, arrived_at)
        if kind == "bounce":  # a Cc'd address that failed leaves the Cc; the customer is untouched
            self.wf.parties.bounce(complaint, mail, raw, now)
        self.store.add_event(complaint["id"], now, mail.from_addr, kind, reason=reason,
                             subject=mail.subject[:120], **({"feedback": mail.feedback} if mail.feedback else {}))
        log_event("automatic_recorded", complaint["ref"], sender=mail.from_addr, reason=reason)
        return complaint["ref"]

    def _authenticated(self, mail: InboundMail) -> tuple[bool, str]:
        """Does the mail really come from its sender's domain ([security], trust.verify)?"""
        if self.cfg.security.require_authenticated_staff:
            return trust.verify(mail, self.cfg.security)
        return True, "authentication not required"

    def _staff(self, mail: InboundMail, raw: bytes, tagged, by_headers, arrived_at, now) -> str | None:
        """Staff answer from their own mail client: relay, note or command (issue 4)."""
        complaint = self._survivor(threads.choose(mail.from_addr, robots.STAFF, tagged, by_headers))
        trusted, why = self._authenticated(mail)
        if not trusted:
            return self._suspicious(mail, raw, complaint, why, arrived_at, now, listed=True)
        parsed = staff.parse_commands(mail.reply_text)
        if complaint is None:
            claimed = refs.tag_pattern(self.cfg.policy.reference_prefix).search(mail.subject)
            if claimed or mail.in_reply_to:
                self._command_error(None, mail, [f"no complaint {claimed.group(0) if claimed else 'matches this thread'}"], now)
            self.wf.store_message(None, mail, raw, "staff_unthreaded", arrived_at)  # kept, never lost
            log_event("staff_mail_unthreaded", sender=mail.from_addr)
            return None
        if parsed.errors:
            self.wf.store_message(complaint["id"], mail, raw, "staff_rejected", arrived_at)
            self._command_error(complaint, mail, list(parsed.errors), now)
            log_event("staff_command_rejected", complaint["ref"], staff=mail.from_addr, errors=len(parsed.errors))
            return complaint["ref"]
        names = [c.name for c in parsed.commands]
        kind = "note" if "note" in names else "staff"
        row = self.wf.store_message(complaint["id"], mail, raw, kind, arrived_at)
        self._obey(complaint, parsed, mail.from_addr, now, mail, row)
        log_event("staff_message", complaint["ref"], staff=mail.from_addr, commands=",".join(names) or None)
        return complaint["ref"]

    def _obey(self, complaint, parsed: staff.StaffMessage, actor: str, now: datetime, mail: InboundMail,
              message_row: int) -> None:
        """Each command decides (commands.REGISTRY) over the complaint as the previous one left it.
        The staff mail's files go with what it sends the customer (`message_row`)."""
        plan = commands.plan([(c.name, c.arg) for c in parsed.commands], parsed.text)
        for step in plan.steps:
            complaint = self.store.complaint_by_id(complaint["id"])
            result = step.command.decide(complaint_from_row(complaint), now, self.cfg, actor, step.arg, step.text)
            if isinstance(result, ForSeller):
                self.sellers.command(complaint, result, actor, now)
            elif isinstance(result, Canned):
                self.canned.carry_out(complaint, result, actor, now, self._staff_name(actor), mail.message_id)
            elif isinstance(result, ForMerge):  # what follows acts on the survivor
                complaint = self.wf.merger.by_mail(complaint, result, actor, now, mail.message_id, mail.subject)
            else:  # a staff member's own Cc is copied on the customer mail it makes (#ask, #resolve)
                result = self.wf.parties.with_staff_cc(result, complaint, mail)
                self.wf.apply(complaint, result, now, actor, message_row=message_row,
                              staff_name=self._staff_name(actor) if step.command.signed else None)
        if plan.relay:
            complaint = self.store.complaint_by_id(complaint["id"])
            decision = policy.staff_answer(complaint_from_row(complaint), now, self.cfg, plan.relay, actor)
            decision = self.wf.parties.with_staff_cc(decision, complaint, mail)  # her Cc, on this relay only
            self.wf.apply(complaint, decision, now, actor, staff_name=self._staff_name(actor), message_row=message_row)

    def _staff_name(self, address: str) -> str | None:
        return self.cfg.staff_names.get(address) if self.cfg.security.expose_staff_address else None

    def _command_error(self, complaint, mail: InboundMail, errors: list[str], now: datetime) -> None:
        self.wf.queue(complaint, policy.Mail("staff_command_error", (mail.from_addr,), "command_error", "staff",
                                             context={"errors": errors, "commands": commands.help_text(),
                                                      "original_subject": mail.subject[:150],
                                                      "ref": complaint["ref"] if complaint else None}),
                      now, in_reply_to=mail.message_id)

    def _unlisted(self, mail: InboundMail, raw: bytes, tagged, by_headers, arrived_at, now) -> str | None:
        """A colleague on a staff domain ([teams] domains) whose address is not listed: never a
        customer. Her mail is kept on the complaint it threads to (or on its own), obeys nothing and
        goes to nobody; she is told how to be added, once a day. Only authenticated mail is
        answered: otherwise anyone could make us write to every address of the domain."""
        complaint = self._survivor(threads.choose(mail.from_addr, robots.STAFF, tagged, by_headers))
        trusted, why = self._authenticated(mail)
        if not trusted:
            return self._suspicious(mail, raw, complaint, why, arrived_at, now, listed=False)
        ref = complaint["ref"] if complaint else None
        self.wf.store_message(complaint["id"] if complaint else None, mail, raw, "staff_unlisted", arrived_at)
        self.store.add_event(complaint["id"] if complaint else None, now, mail.from_addr, "staff_unlisted",
                             subject=mail.subject[:120])
        told = queries.unlisted_told_since(self.store, mail.from_addr, now - UNLISTED_TOLD_EVERY)
        if not told:
            self.wf.queue(complaint, policy.Mail("staff_unlisted", (mail.from_addr,), "staff_unlisted", "staff",
                                                 context={"address": mail.from_addr, "admins": self.cfg.teams.admins,
                                                          "original_subject": mail.subject[:150], "ref": ref}),
                          now, in_reply_to=mail.message_id)
        log_event("staff_unlisted", ref, severity=30, sender=mail.from_addr, told=not told)
        return ref

    def _suspicious(self, mail: InboundMail, raw: bytes, complaint, why: str, arrived_at, now,
                    listed: bool) -> str | None:
        """A staff-looking address that failed authentication: kept, obeyed in nothing, admins told
        what to fix. A listed colleague is also told (one mail an hour at most, notices.py): the mail
        goes to her real mailbox, not to whoever forged it, so she learns that her address was used or
        that her domain's authentication fails. An unlisted address is not written to (it may not
        exist)."""
        ref = complaint["ref"] if complaint else None
        checks = trust.refusal(mail, self.cfg.security)
        if complaint is not None:
            self.wf.store_message(complaint["id"], mail, raw, "suspicious", arrived_at)
            self.store.add_event(complaint["id"], now, mail.from_addr, "suspicious", why=why)
        else:
            self.store.add_event(None, now, mail.from_addr, "suspicious", why=why, subject=mail.subject[:120])
        facts = {"claimed": mail.from_addr, "why": why, "ref": ref, "listed": listed,
                 "original_subject": mail.subject[:150], **checks}
        self.notices.raise_notice("*", policy.Mail("admin_suspicious", tuple(self.cfg.teams.admins), "alert", "admin",
                                                   context=facts), now, complaint["id"] if complaint else None)
        if listed:
            self.notices.raise_notice(mailbox_key(mail.from_addr),
                                      policy.Mail("staff_refused", (mail.from_addr,), "refused", "staff",
                                                  context=facts), now, complaint["id"] if complaint else None)
        log_event("suspicious_staff_mail", ref, severity=30, claimed=mail.from_addr, why=why)
        return ref

    def record_sent(self, raw: bytes, sent_at: datetime, now: datetime, omitted: tuple = ()) -> str | None:
        """A message found in the Sent folder: if staff wrote it to a complaint's
        customer from the shared mailbox (not sent by us), record it."""
        try:
            mail = _with_omitted(parse(raw), omitted)
        except ParseError:
            return None
        if queries.we_queued(self.store, mail.message_id):
            return None  # ours (Gmail files what we send in Sent): counted in the outbox
        # staff sent it from the account itself: it counts against Gmail's daily limit (once, however
        # often Sent is read again)
        queries.count_sent_elsewhere(self.store, mail.message_id, sent_at,
                                     len({a.lower() for a in (*mail.to, *mail.cc, *mail.bcc)}))
        if queries.message_recorded(self.store, mail.message_id):
            return None  # already recorded
        tagged, by_headers = self._claimed(mail)
        recipients = {*mail.to, *mail.cc}
        complaint = self._survivor(next((c for c in [*tagged, *by_headers] if c["customer_addr"] in recipients), None))
        if complaint is None:
            return None
        row_id = self.wf.store_message(complaint["id"], mail, raw, "customer:staff_sent", sent_at)
        self.store.update("messages", row_id, {"direction": "out"})
        decision = policy.staff_update_seen(complaint_from_row(complaint), sent_at, mail.from_addr)
        self.wf.apply(complaint, decision, now, actor=mail.from_addr)
        log_event("staff_update_seen", complaint["ref"], via="sent folder")
        return complaint["ref"]
