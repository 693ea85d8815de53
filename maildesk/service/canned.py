"""Canned answers by mail (`#template NAME`, issue 18 item 1).

The core says which name staff asked for (`commands.UseTemplate` -> `commands.Canned`); this file
finds the file (`templates/canned/<lang>/NAME.txt`, the operator's `[templates] dir` first, the
customer's language then the configured one), renders it with the complaint's context and relays
it, followed by the staff member's own text, exactly as a staff answer (`policy.staff_answer`:
same threading, signature and clocks). No name, an unknown one or one that does not render: the
staff member gets the list of canned answers, and nothing goes to the customer. Files are read at
each use (`Templates.canned`), so an admin adds one without restarting the daemon.
"""
from __future__ import annotations

from datetime import datetime

import jinja2

from maildesk.core import deadlines, policy
from maildesk.core.commands import Canned
from maildesk.logs import event as log_event
from maildesk.store.complaints import complaint_from_row


class CannedAnswers:
    def __init__(self, workflow):
        self.wf = workflow
        self.cfg = workflow.cfg
        self.templates = workflow.templates

    def context(self, complaint, now: datetime) -> dict:
        """What a canned file may use: the complaint's mail context, its seller, the next deadline."""
        ctx = self.wf.context(complaint, now)
        c = complaint_from_row(complaint)
        seller = self.wf.sellers.registry.get(complaint["seller_id"]) if complaint["seller_id"] else None
        upcoming = deadlines.applying(c.first_contact, c.level, now, self.cfg)
        ctx.update(seller=dict(seller) if seller else None, next_deadline=upcoming.due if upcoming else None)
        return ctx

    def carry_out(self, complaint, canned: Canned, actor: str, now: datetime, staff_name: str | None,
                  message_id: str | None) -> None:
        lang = complaint["lang"] or self.cfg.policy.language
        path = self.templates.canned_path(canned.name, lang) if canned.name else None
        if path is None:
            self._list(complaint, canned, actor, now, message_id, problem=None)
            return
        try:
            text = self.templates.render_canned(path, lang, **self.context(complaint, now))
        except (jinja2.TemplateError, OSError, UnicodeDecodeError) as e:
            problem = f"{path}: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
            log_event("canned_answer_broken", complaint["ref"], severity=40, canned=canned.name, error=problem)
            self._list(complaint, canned, actor, now, message_id, problem=problem)
            return
        full = f"{text}\n\n{canned.text}" if canned.text else text
        decision = policy.staff_answer(complaint_from_row(complaint), now, self.cfg, full, actor)
        decision.event("canned_answer", name=canned.name, file=str(path))
        self.wf.apply(complaint, decision, now, actor, staff_name=staff_name)
        log_event("canned_answer", complaint["ref"], staff=actor, canned=canned.name)

    def _list(self, complaint, canned: Canned, actor: str, now: datetime, message_id: str | None,
              problem: str | None) -> None:
        lang = complaint["lang"] or self.cfg.policy.language
        answers = self.templates.canned(lang)
        self.wf.queue(complaint, policy.Mail("staff_canned_list", (actor,), "canned_list", "staff", context={
            "asked": canned.asked, "answers": answers, "problem": problem, "dropped_text": bool(canned.text),
            "customer_lang": lang}), now, in_reply_to=message_id)
        self.wf.store.add_event(complaint["id"], now, actor, "canned_list_sent", asked=canned.asked or None,
                                problem=problem)
