"""Carrying out decisions: one inbound mail or one clock tick becomes
stored state, an audit trail and queued mail, in one transaction.

The caller (daemon, CLI) opens the transaction; everything written here for
one event commits or rolls back together, so a crash leaves either nothing
or the whole event, never an acknowledgement without its complaint.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from maildesk.core import addresses, budgets, robots as classify, policy, refs, staff, threads
from maildesk.core.addresses import mailbox_key
from maildesk.config import Config
from maildesk.logs import event as log_event
from maildesk.inbound.parse import InboundMail, ParseError, parse
from maildesk.service.notices import Notices
from maildesk.outbound.compose import compose, new_message_id
from maildesk.service.seller_desk import SellerDesk
from maildesk.store.db import Store, from_iso, iso
from maildesk.outbound.templates import Templates

AUTO_SUBMITTED = {"ack": "auto-replied", "relay": None, "outreach": None}  # everything else: auto-generated
HISTORY = 5  # messages shown in staff notifications
# inbound kinds never shown to anyone as part of a complaint (staff notifications' history): automatic
# mail, forged staff mail and unlisted colleagues' mail are recorded for the timeline, but their
# text is nobody's news
UNSHOWN = ("auto", "bounce", "suspicious", "staff_unlisted")
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


def complaint_from_row(row) -> policy.Complaint:
    values = {}
    for f in fields(policy.Complaint):
        value = row[f.name]
        if f.name.endswith("_at") or f.name == "first_contact":
            value = from_iso(value)
        values[f.name] = value
    return policy.Complaint(**values)


def _unreachable(decision: policy.Decision, why: str) -> None:
    """A new complaint from an address mail cannot go to: kept, staff told, nothing queued to it."""
    decision.mails[:] = [m for m in decision.mails if m.audience != "customer"]
    decision.changes.pop("acked_at", None)
    decision.event("unreachable_address", reason=why)
    for m in decision.mails:
        m.context["unreachable"] = why


class Workflow:
    def __init__(self, cfg: Config, store: Store, templates: Templates):
        self.cfg = cfg
        self.store = store
        self.templates = templates
        self.silent = False  # importing history (`import-mbox`): decide everything, send nothing
        self.sellers = SellerDesk(self)  # P11-P13: registry, outreach, contact details, sanctions
        self.notices = Notices(self)  # admin alerts and flood notices, coalesced to one mail an hour

    # --- inbound -------------------------------------------------------------
    def receive(self, raw: bytes, arrived_at: datetime, now: datetime, omitted: tuple = ()) -> Outcome:
        """Parse, classify, thread and apply one message. Call inside a transaction.
        `omitted`: attachments of a large message that were not fetched (imap.Fetched.omitted),
        recorded by name, type and size."""
        try:
            mail = _with_omitted(parse(raw), omitted)
        except ParseError as e:
            return Outcome("quarantine", reason=e.reason)
        if self.store.seen(mail.message_id):
            return Outcome("duplicate", message_id=mail.message_id)
        sender = classify.classify(mail, self.cfg, self.seller_addresses())
        tagged = [c for r in refs.find_references(self.cfg.policy.reference_prefix, mail.subject)
                  if (c := self.store.complaint(r))]
        by_headers = self.store.complaints_for_message_ids([*mail.in_reply_to, *mail.references])
        if sender.role == classify.ROBOT:
            ref = self._robot(mail, raw, sender.reason, tagged, by_headers, arrived_at, now)
        elif sender.role == classify.STAFF:
            ref = self._staff(mail, raw, tagged, by_headers, arrived_at, now)
        elif sender.role == classify.SELLER:
            ref = self.sellers.receive(mail, raw, tagged, by_headers, arrived_at, now)
        elif sender.role == classify.UNLISTED:
            ref = self._unlisted(mail, raw, tagged, by_headers, arrived_at, now)
        else:
            ref = self._customer(mail, raw, sender.role, tagged, by_headers, arrived_at, now)
        self.store.insert("processed", {"message_id": mail.message_id, "at": iso(now),
                                        "outcome": sender.role, "ref": ref})
        log_event("received", ref, sender=mail.from_addr, role=sender.role, size=len(raw),
                  message_id=mail.message_id)
        return Outcome("processed", ref=ref, message_id=mail.message_id)

    def seller_addresses(self):
        """Registered seller addresses (a lookup that asks the database)."""
        return self.sellers.addresses()

    def _customer(self, mail: InboundMail, raw: bytes, role: str, tagged, by_headers, arrived_at, now) -> str:
        complaint = threads.choose(mail.from_addr, role, tagged, by_headers)
        if threads.foreign_reference(mail.from_addr, role, tagged) and complaint is None:
            log_event("foreign_reference", sender=mail.from_addr,
                      claimed=",".join(c["ref"] for c in tagged))
        if complaint is None:
            return self._open(mail, raw, arrived_at, now)
        self._store_message(complaint["id"], mail, raw, "customer", arrived_at)
        state = complaint_from_row(complaint)
        decision = policy.customer_message(state, now, self.cfg, mail.reply_text)
        self.sellers.on_customer_message(complaint, decision, mail.reply_text, now)  # P12 requests
        self._apply(complaint, decision, now, actor=mail.from_addr)
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
        })
        complaint = self.store.complaint_by_id(row_id)
        self._store_message(row_id, mail, raw, "customer", arrived_at)
        decision = policy.open_complaint(complaint_from_row(complaint), now, self.cfg, send_ack=intake.send_ack,
                                         notify_staff=intake.notify_each, seller_hint=self.sellers.hint(mail),
                                         contact_request=self.sellers.asks_for_contact(mail))
        reachable, why = addresses.sendable(mail.from_addr)
        if not reachable:
            _unreachable(decision, why)
            log_event("unreachable_address", ref, severity=30, reason=why)
        self._apply(complaint, decision, now, actor=mail.from_addr)
        log_event("complaint_opened", ref, customer=mail.from_addr, lang=mail.language,
                  order=mail.order_number)
        if not intake.send_ack:
            log_event("ack_suppressed", ref, severity=30, customer=mail.from_addr, reason="flood")
            self._flood(complaint, mail, key, intake, now)
        return ref

    def _intake(self, address: str, key: str, now: datetime) -> budgets.Intake:
        """What a new complaint from this mailbox may cost (budgets.new_complaint)."""
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
        complaint = threads.choose_automatic(mail.from_addr, mail.from_addr in self.cfg.staff, ours, claimed, linked)
        # a feedback report: the customer marked our mail as spam (counted in the digest)
        kind = "spam_report" if mail.feedback else "bounce" if mail.bounce_of or "delivery" in reason else "auto"
        if complaint is None:
            self._store_message(None, mail, raw, kind, arrived_at)  # kept, never lost, nobody's news
            log_event("automatic_unthreaded", sender=mail.from_addr, reason=reason,
                      claimed=",".join(sorted({c["ref"] for c in claimed})) or None)
            return None
        self._store_message(complaint["id"], mail, raw, kind, arrived_at)
        self.store.add_event(complaint["id"], now, mail.from_addr, kind, reason=reason,
                             subject=mail.subject[:120], **({"feedback": mail.feedback} if mail.feedback else {}))
        log_event("automatic_recorded", complaint["ref"], sender=mail.from_addr, reason=reason)
        return complaint["ref"]

    def _authenticated(self, mail: InboundMail) -> tuple[bool, str]:
        """Does the mail really come from its sender's domain ([security], staff.verify)?"""
        if self.cfg.security.require_authenticated_staff:
            return staff.verify(mail, self.cfg.security)
        return True, "authentication not required"

    def _staff(self, mail: InboundMail, raw: bytes, tagged, by_headers, arrived_at, now) -> str | None:
        """Staff answer from their own mail client: relay, note or command (issue 4)."""
        complaint = threads.choose(mail.from_addr, classify.STAFF, tagged, by_headers)
        trusted, why = self._authenticated(mail)
        if not trusted:
            return self._suspicious(mail, raw, complaint, why, arrived_at, now, listed=True)
        parsed = staff.parse_commands(mail.reply_text)
        if complaint is None:
            claimed = refs.tag_pattern(self.cfg.policy.reference_prefix).search(mail.subject)
            if claimed or mail.in_reply_to:
                self._command_error(None, mail, [f"no complaint {claimed.group(0) if claimed else 'matches this thread'}"], now)
            self._store_message(None, mail, raw, "staff_unthreaded", arrived_at)  # kept, never lost
            log_event("staff_mail_unthreaded", sender=mail.from_addr)
            return None
        if parsed.errors:
            self._store_message(complaint["id"], mail, raw, "staff_rejected", arrived_at)
            self._command_error(complaint, mail, list(parsed.errors), now)
            log_event("staff_command_rejected", complaint["ref"], staff=mail.from_addr, errors=len(parsed.errors))
            return complaint["ref"]
        names = [c.name for c in parsed.commands]
        kind = "note" if "note" in names else "staff"
        self._store_message(complaint["id"], mail, raw, kind, arrived_at)
        self._obey(complaint, parsed, mail.from_addr, now)
        log_event("staff_message", complaint["ref"], staff=mail.from_addr, commands=",".join(names) or None)
        return complaint["ref"]

    def _obey(self, complaint, parsed, actor: str, now: datetime) -> None:
        names = [c.name for c in parsed.commands]
        text = parsed.text
        if "note" in names:
            self.store.add_event(complaint["id"], now, actor, "note", text=text[:500])
            return
        # Where the text goes depends on which commands there are, never on their order:
        # with a seller command it is for the seller (facts, a reason) and never reaches
        # the customer; #resolve / #ask then go without it.
        seller_text = text if any(n in self.sellers.COMMANDS for n in names) else ""
        text = "" if seller_text else text
        for command in parsed.commands:
            complaint = self.store.complaint_by_id(complaint["id"])
            state = complaint_from_row(complaint)
            if command.name == "resolve":
                self._apply(complaint, policy.resolve(state, now, self.cfg, text, actor), now, actor)
                text = ""
            elif command.name == "ask":
                self._apply(complaint, policy.staff_answer(state, now, self.cfg, text, actor, ask=True),
                            now, actor, staff_name=self._staff_name(actor))
                text = ""
            elif command.name == "escalate":
                self._apply(complaint, policy.move_to_level(state, now, self.cfg, min(state.level + 1, 3),
                                                            actor, "staff"), now, actor)
            elif command.name == "level":
                self._apply(complaint, policy.move_to_level(state, now, self.cfg, int(command.arg), actor,
                                                            "staff"), now, actor)
            elif command.name == "assign":
                self.store.update("complaints", complaint["id"], {"owner": command.arg.lower()})
                self.store.add_event(complaint["id"], now, actor, "assigned", owner=command.arg.lower())
            elif command.name == "reopen":
                self._apply(complaint, policy.reopen(state, now, actor), now, actor)
            elif self.seller_command(complaint, command, actor, now, seller_text):
                seller_text = ""  # used once, by the first seller command
        if text:
            complaint = self.store.complaint_by_id(complaint["id"])
            decision = policy.staff_answer(complaint_from_row(complaint), now, self.cfg, text, actor)
            self._apply(complaint, decision, now, actor, staff_name=self._staff_name(actor))

    def seller_command(self, complaint, command, actor: str, now: datetime, text: str = "") -> bool:
        """#seller, #contact-seller, #seller-failed, #uncooperative (seller_desk.py).
        True when the staff text was used (facts, reason) and must not reach the customer."""
        return self.sellers.command(complaint, command, actor, now, text)

    def _staff_name(self, address: str) -> str | None:
        return self.cfg.staff_names.get(address) if self.cfg.security.expose_staff_address else None

    def _command_error(self, complaint, mail: InboundMail, errors: list[str], now: datetime) -> None:
        self.queue(complaint, policy.Mail("staff_command_error", (mail.from_addr,), "command_error", "staff",
                                          context={"errors": errors, "commands": staff.help_text(),
                                                   "original_subject": mail.subject[:150],
                                                   "ref": complaint["ref"] if complaint else None}),
                   now, in_reply_to=mail.message_id)

    def _unlisted(self, mail: InboundMail, raw: bytes, tagged, by_headers, arrived_at, now) -> str | None:
        """A colleague on a staff domain ([teams] domains) whose address is not listed: never a
        customer. Her mail is kept on the complaint it threads to (or on its own), obeys nothing and
        goes to nobody; she is told how to be added, once a day. Only authenticated mail is
        answered: otherwise anyone could make us write to every address of the domain."""
        complaint = threads.choose(mail.from_addr, classify.STAFF, tagged, by_headers)
        trusted, why = self._authenticated(mail)
        if not trusted:
            return self._suspicious(mail, raw, complaint, why, arrived_at, now, listed=False)
        ref = complaint["ref"] if complaint else None
        self._store_message(complaint["id"] if complaint else None, mail, raw, "staff_unlisted", arrived_at)
        self.store.add_event(complaint["id"] if complaint else None, now, mail.from_addr, "staff_unlisted",
                             subject=mail.subject[:120])
        told = self.store.one("SELECT 1 FROM outbox WHERE rcpt = ? AND kind = 'staff_unlisted' AND created_at >= ?",
                              json.dumps([mail.from_addr]), iso(now - UNLISTED_TOLD_EVERY))
        if told is None:
            self.queue(complaint, policy.Mail("staff_unlisted", (mail.from_addr,), "staff_unlisted", "staff",
                                              context={"address": mail.from_addr, "admins": self.cfg.teams.admins,
                                                       "original_subject": mail.subject[:150], "ref": ref}),
                       now, in_reply_to=mail.message_id)
        log_event("staff_unlisted", ref, severity=30, sender=mail.from_addr, told=told is None)
        return ref

    def _suspicious(self, mail: InboundMail, raw: bytes, complaint, why: str, arrived_at, now,
                    listed: bool) -> str | None:
        """A staff-looking address that failed authentication: kept, obeyed in nothing, admins told
        what to fix. A listed colleague is also told (one mail an hour at most, notices.py): the mail
        goes to her real mailbox, not to whoever forged it, so she learns that her address was used or
        that her domain's authentication fails. An unlisted address is not written to (it may not
        exist)."""
        ref = complaint["ref"] if complaint else None
        checks = staff.refusal(mail, self.cfg.security)
        if complaint is not None:
            self._store_message(complaint["id"], mail, raw, "suspicious", arrived_at)
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

    def _store_message(self, complaint_id: int | None, mail: InboundMail, raw: bytes, kind: str,
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
            self.store.insert("attachments", {
                "message_row": row_id, "filename": att.filename, "content_type": att.content_type,
                "size": att.size, "content": att.payload if att.size <= limit else None})  # None: not fetched
        return row_id

    def record_sent(self, raw: bytes, sent_at: datetime, now: datetime, omitted: tuple = ()) -> str | None:
        """A message found in the Sent folder: if staff wrote it to a complaint's
        customer from the shared mailbox (not sent by us), record it. Call inside a transaction."""
        try:
            mail = _with_omitted(parse(raw), omitted)
        except ParseError:
            return None
        if self.store.one("SELECT 1 FROM outbox WHERE message_id = ?", mail.message_id):
            return None  # ours (Gmail files what we send in Sent): counted in the outbox
        # staff sent it from the account itself: it counts against Gmail's daily limit (once, however
        # often Sent is read again)
        self.store.conn.execute("INSERT OR IGNORE INTO sent_elsewhere(message_id, sent_at, recipients) "
                                "VALUES (?, ?, ?)", (mail.message_id, iso(sent_at),
                                                     len({a.lower() for a in (*mail.to, *mail.cc, *mail.bcc)})))
        if self.store.one("SELECT 1 FROM messages WHERE message_id = ?", mail.message_id):
            return None  # already recorded
        tagged = [c for r in refs.find_references(self.cfg.policy.reference_prefix, mail.subject)
                  if (c := self.store.complaint(r))]
        by_headers = self.store.complaints_for_message_ids([*mail.in_reply_to, *mail.references])
        recipients = {*mail.to, *mail.cc}
        complaint = next((c for c in [*tagged, *by_headers] if c["customer_addr"] in recipients), None)
        if complaint is None:
            return None
        row_id = self._store_message(complaint["id"], mail, raw, "customer:staff_sent", sent_at)
        self.store.update("messages", row_id, {"direction": "out"})
        decision = policy.staff_update_seen(complaint_from_row(complaint), sent_at, mail.from_addr)
        self._apply(complaint, decision, now, actor=mail.from_addr)
        log_event("staff_update_seen", complaint["ref"], via="sent folder")
        return complaint["ref"]

    # --- the clock and commands ----------------------------------------------
    def sweep(self, now: datetime, limit: int = 1000) -> int:
        """Act on every complaint whose next due moment has come. Call inside a transaction."""
        rows = self.store.due_complaints(now, limit)
        for row in rows:
            try:
                with self.store.transaction():  # a savepoint: one bad complaint rolls back alone
                    self._apply(row, policy.sweep(complaint_from_row(row), now, self.cfg), now,
                                actor="maildesk", swept=True)
            except sqlite3.OperationalError:
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
        self._apply(row, decision, now, actor=actor)
        return decision

    # --- applying a decision -------------------------------------------------
    def _apply(self, row, decision: policy.Decision, now: datetime, actor: str,
               staff_name: str | None = None, swept: bool = False) -> None:
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
                self.queue(fresh, mail, now, staff_name=staff_name)

    def queue(self, complaint, mail: policy.Mail, now: datetime, *, staff_name: str | None = None,
              in_reply_to: str | None = None) -> str:
        """Render a mail, and write it to the outbox and the complaint's messages."""
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
        if automatic and mail.kind != "ack" and self.store.recent_auto_replies(
                mail.to[0], now - timedelta(hours=1)) >= self.cfg.policy.max_auto_replies_per_hour:
            # a robot that echoes us without RFC 3834 headers must not keep us talking
            if complaint:
                self.store.add_event(complaint["id"], now, "maildesk", "auto_mail_suppressed", mail=mail.kind)
            log_event("auto_mail_suppressed", ref, severity=30, kind=mail.kind, to=mail.to[0])
            return ""
        lang = complaint["lang"] if complaint and mail.audience == "customer" else self.cfg.policy.language
        context = self._context(complaint, now)
        context.update(mail.context)
        context.setdefault("staff_name", staff_name)
        rendered = self.templates.render(mail.template, lang, **context)
        message_id = new_message_id(self.cfg.support_domain, ref)
        parent, chain = self._threading(complaint, mail.audience) if complaint else (None, [])
        raw = compose(
            from_addr=self.cfg.smtp.from_address, from_name=self.cfg.smtp.from_name,
            to=list(mail.to), subject=rendered.subject, text=rendered.text, html=rendered.html,
            message_id=message_id, date=now, in_reply_to=in_reply_to or parent, references=chain,
            auto_submitted=AUTO_SUBMITTED.get(mail.kind, "auto-generated"),
            reply_to=self.cfg.smtp.from_address, reference=ref)
        self.store.insert("outbox", {
            "message_id": message_id, "complaint_id": complaint["id"] if complaint else None,
            "kind": mail.kind, "audience": mail.audience, "routine": int(mail.routine),
            "mail_from": self.cfg.smtp.from_address, "rcpt": json.dumps(list(mail.to)),
            "rcpt_key": mailbox_key(mail.to[0]) if mail.audience == "customer" and len(mail.to) == 1 else None,
            "subject": rendered.subject, "raw": raw, "status": "queued", "attempts": 0,
            "next_attempt_at": iso(now), "created_at": iso(now)})
        if complaint:
            self.store.insert("messages", {
                "complaint_id": complaint["id"], "message_id": message_id, "direction": "out",
                "kind": f"{mail.audience}:{mail.kind}", "at": iso(now), "from_addr": self.cfg.support_address,
                "to_addrs": ", ".join(mail.to), "subject": rendered.subject, "body": rendered.text})
        log_event("mail_queued", ref, kind=mail.kind, audience=mail.audience, template=mail.template)
        return message_id

    def _threading(self, complaint, audience: str) -> tuple[str | None, list[str]]:
        """In-Reply-To and References that keep a mail in its reader's conversation."""
        if audience == "customer":
            rows = self.store.all(
                "SELECT message_id, direction FROM messages WHERE complaint_id = ? AND "
                "(kind = 'customer' OR kind LIKE 'customer:%') ORDER BY at, id", complaint["id"])
        else:
            rows = self.store.all(
                "SELECT message_id, direction FROM messages WHERE complaint_id = ? AND "
                "kind LIKE ? ORDER BY at, id", complaint["id"], f"{audience}:%")
        ids = [r["message_id"] for r in rows]
        inbound = [r["message_id"] for r in rows if r["direction"] == "in"]
        parent = inbound[-1] if inbound else (ids[-1] if ids else None)
        chain = ids[:1] + ids[1:][-9:]
        return parent, chain

    def _context(self, complaint, now: datetime) -> dict:
        ctx = {"now": now, "cfg": self.cfg, "support_address": self.cfg.smtp.from_address,
               "brand": self.cfg.smtp.from_name}
        if complaint is None:
            return ctx
        c = dict(complaint)
        for key, value in list(c.items()):
            if key.endswith("_at") or key in ("first_contact", "next_due"):
                c[key] = from_iso(value)
        history = self.store.all(
            "SELECT direction, kind, at, from_addr, subject, reply_text, body FROM messages "
            f"WHERE complaint_id = ? AND ((direction = 'in' AND kind NOT IN ({','.join('?' * len(UNSHOWN))})) "
            "OR kind LIKE 'customer:%') "
            "ORDER BY at DESC, id DESC LIMIT ?", complaint["id"], *UNSHOWN, HISTORY)
        items = [{**dict(h), "at": from_iso(h["at"])} for h in history]
        first = self.store.one("SELECT reply_text, body FROM messages WHERE complaint_id = ? AND direction = 'in' "
                               "AND kind = 'customer' ORDER BY at, id LIMIT 1", complaint["id"])
        ctx.update(complaint=c, ref=complaint["ref"], tag=refs.tag(complaint["ref"]),
                   subject=complaint["subject"] or "", level=complaint["level"],
                   deadlines=policy.deadlines(c["first_contact"], self.cfg),
                   history=items, latest=next((h for h in items if h["kind"] == "customer"), None),
                   first_message=dict(first) if first else None)
        return ctx
