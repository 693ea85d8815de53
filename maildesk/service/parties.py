"""The customer's Cc, carried out (issue 16 item 6; the rule is core/parties.py).

- `note_customer_cc`: the addresses the customer put in Cc (or To besides ours) are kept on the
  complaint (`complaints.cc_addrs`), the refused ones recorded as an event.
- `cc_for`: whom an outgoing mail copies: the complaint's Cc on customer-facing mail (unless
  `[policy] keep_customer_cc = false`), plus a staff member's own Cc on her relay (that mail
  only). Staff, admin and seller mail copy nobody: a seller never sees the customer's Cc list.
- `with_staff_cc`: a staff reply's Cc, put on the customer mails of that reply's decision.
- `message`: a party writes in: news for the handling team (no rating, no resolving, no seller
  details); her status question is answered in the customer's thread (she is in its Cc).
- `bounce`: a delivery report for a Cc'd address drops that address (an event), nothing else.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from maildesk.core import parties, policy, status_request
from maildesk.logs import event as log_event
from maildesk.store import complaints
from maildesk.store.complaints import complaint_from_row

REPORT_BYTES = 256 * 1024  # where a delivery report's status part is looked for
STAFF_CC = "staff_cc"  # the key in a Mail's context holding a staff reply's own Cc


class Parties:
    def __init__(self, workflow):
        self.wf = workflow
        self.cfg = workflow.cfg
        self.store = workflow.store

    def _sellers(self):
        return self.wf.sellers.addresses()

    # --- the complaint's Cc ----------------------------------------------------------
    def note_customer_cc(self, complaint, mail, now: datetime):
        """Keep the customer's new Cc on the complaint; returns the row as it is now."""
        offered = [*mail.to, *mail.cc]  # our own address among them is refused by the rule
        if not offered:
            return complaint
        picked = parties.customer_cc(parties.stored(complaint), offered, self.cfg, self._sellers(),
                                     complaint["customer_addr"])
        if picked.added:
            self.store.update("complaints", complaint["id"], {"cc_addrs": json.dumps(list(picked.kept))})
            self.store.add_event(complaint["id"], now, mail.from_addr, "cc_added", addresses=list(picked.added))
        refused = [(a, why) for a, why in picked.dropped if why != "our own address"]
        if refused:
            self.store.add_event(complaint["id"], now, mail.from_addr, "cc_refused",
                                 refused=[f"{a}: {why}" for a, why in refused])
            log_event("cc_refused", complaint["ref"], count=len(refused))
        return self.store.complaint_by_id(complaint["id"]) if picked.added else complaint

    def take_cc(self, complaint, offered, actor: str, now: datetime) -> None:
        """Add `offered` to the complaint's Cc by the same rule as the customer's own (a merge)."""
        picked = parties.customer_cc(parties.stored(complaint), offered, self.cfg, self._sellers(),
                                     complaint["customer_addr"])
        if picked.added:
            self.store.update("complaints", complaint["id"], {"cc_addrs": json.dumps(list(picked.kept))})
            self.store.add_event(complaint["id"], now, actor, "cc_added", addresses=list(picked.added))

    def cc_for(self, complaint, mail: policy.Mail) -> list[str]:
        """The Cc of one outgoing mail (queue() puts it in the header and the envelope)."""
        if complaint is None or mail.audience != "customer":
            return []
        cc = list(parties.stored(complaint)) if self.cfg.policy.keep_customer_cc else []
        cc += [a for a in mail.context.get(STAFF_CC, ()) if a not in cc]
        to = {a.lower() for a in mail.to}
        return [a for a in cc if a.lower() not in to]

    def with_staff_cc(self, decision: policy.Decision, complaint, mail) -> policy.Decision:
        """A staff reply's own Cc copied on the customer mails it makes (relay, #ask, #resolve)."""
        if not mail.cc or not any(m.audience == "customer" for m in decision.mails):
            return decision
        already = parties.stored(complaint) if self.cfg.policy.keep_customer_cc else ()
        picked = parties.relay_cc(mail.cc, already, self.cfg, self._sellers(), complaint["customer_addr"])
        if not picked.kept:
            return decision
        mails = [replace(m, context={**m.context, STAFF_CC: picked.kept}) if m.audience == "customer" else m
                 for m in decision.mails]
        return replace(decision, mails=mails)

    # --- a party writes in ---------------------------------------------------------
    def message(self, complaint, mail, raw: bytes, arrived_at: datetime, now: datetime) -> str:
        """Mail from someone in the customer's Cc, threaded to her complaint."""
        state = complaint_from_row(complaint)
        if status_request.is_status_request(mail.reply_text) and self.cfg.policy.keep_customer_cc:
            # answered in the customer's thread, which copies her: she learns what the customer
            # learns, and the customer's echo budget bounds it (no mail to a new address)
            self.wf.store_message(complaint["id"], mail, raw, "status_request", arrived_at)
            self.wf.tell(complaint, status_request.answer(state, now, self.cfg), now, actor=mail.from_addr,
                         in_reply_to=mail.message_id)
            log_event("status_requested", complaint["ref"], sender=mail.from_addr, party=True)
            return complaint["ref"]
        row = self.wf.store_message(complaint["id"], mail, raw, "party", arrived_at)
        self.wf.apply(complaint, parties.party_message(state, now, self.cfg, mail.from_addr), now,
                      actor=mail.from_addr, message_row=row)
        log_event("party_message", complaint["ref"], sender=mail.from_addr)
        return complaint["ref"]

    # --- a delivery report ---------------------------------------------------------
    def bounce(self, complaint, mail, raw: bytes, now: datetime) -> None:
        """A report naming a Cc'd address as failed drops it from the complaint's Cc. The report's
        message/delivery-status part is not in the mail's text: its Final-Recipient lines are read
        from the raw bytes (it comes before the returned message, so the first REPORT_BYTES)."""
        text = raw[:REPORT_BYTES].decode("utf-8", "replace")
        failed = parties.failed_cc(complaint, parties.failed_recipients(text, mail.headers))
        if not failed:
            return
        complaints.drop_cc(self.store, complaint, failed, now, "maildesk", "delivery report")
        log_event("cc_dropped", complaint["ref"], count=len(failed))
