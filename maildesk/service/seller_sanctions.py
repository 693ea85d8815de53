"""P13: strikes against sellers who don't cooperate, the flag that tells
admins, and the admins' decisions (restrict, terminate, reinstate): the
seller is told by mail, the decision is recorded with its reason and its
author, and `[sellers] webhook_url` hears about it.

Call inside a `Store.transaction()`.
"""
from __future__ import annotations

from datetime import datetime

from maildesk.core import sellers
from maildesk.logs import event as log_event
from maildesk.core.policy import Mail
from maildesk.store.sellers import Registry
from maildesk.store import webhooks
from maildesk.store.db import iso

PAST = {"restrict": "restricted", "terminate": "terminated", "reinstate": "reinstated"}


class Sanctions:
    def __init__(self, workflow, registry: Registry):
        self.wf = workflow
        self.cfg = workflow.cfg
        self.store = workflow.store
        self.registry = registry

    def strike(self, seller_id: str, kind: str, at: datetime, actor: str, now: datetime, *,
               complaint=None, outreach_id: int | None = None, reason: str | None = None) -> bool:
        """Count one failure to cooperate; True when it made the seller flagged."""
        complaint_id = complaint["id"] if complaint else None
        self.registry.strike(seller_id, kind, at, actor, complaint_id=complaint_id, outreach_id=outreach_id,
                             reason=reason)
        self.registry.event(seller_id, now, actor, "strike", complaint_id=complaint_id, strike=kind,
                            reason=reason, ref=complaint["ref"] if complaint else None)
        if complaint:
            self.store.add_event(complaint_id, now, actor, "seller_strike", seller=seller_id, strike=kind,
                                 reason=reason)
        return self.check_flag(seller_id, now)

    def check_flag(self, seller_id: str, now: datetime) -> bool:
        seller = self.registry.get(seller_id)
        s = self.cfg.sellers
        count = self.registry.cooperation_count(seller_id, now, s.window_days)
        if not sellers.should_flag(seller["status"], count, s.flag_after):
            return False
        reason = f"{count} strikes in {s.window_days:g} days"
        self.registry.change(seller_id, {"status": "flagged", "status_reason": reason, "status_by": "maildesk",
                                         "status_at": iso(now)}, now, "maildesk", kind=None)
        self.registry.event(seller_id, now, "maildesk", "flagged", strikes=count, window_days=s.window_days,
                            flag_after=s.flag_after)
        strikes = [dict(r) for r in self.registry.strikes(seller_id)][-s.flag_after * 2:]
        self.wf.queue(None, Mail("admin_seller_flagged", tuple(self.cfg.teams.admins), "alert", "admin",
                                 context={"seller": sellers.seller_card(self.registry.get(seller_id)),
                                          "count": count, "window_days": s.window_days,
                                          "flag_after": s.flag_after, "strikes": strikes}), now)
        log_event("seller_flagged", severity=30, seller=seller_id, strikes=count)
        return True

    def decide(self, seller_id: str, decision: str, reason: str, by: str, now: datetime) -> dict:
        """An admin decision. Raises KeyError (unknown seller) or sellers.DecisionError."""
        seller = self.registry.get(seller_id)
        if seller is None:
            raise KeyError(seller_id)
        reason = " ".join((reason or "").split())
        if not reason:
            raise sellers.DecisionError("a decision needs a reason (--reason TEXT)")
        new = sellers.decide(seller["status"], decision)
        changes = {"status": new, "status_reason": reason, "status_by": by, "status_at": iso(now)}
        if decision == "reinstate":
            changes["strikes_cleared_at"] = iso(now)  # a fresh start: older strikes no longer count
        self.registry.change(seller["id"], changes, now, by, kind=None)
        self.registry.event(seller["id"], now, by, PAST[decision], reason=reason, previous=seller["status"],
                            status=new)
        fresh = self.registry.get(seller["id"])
        self.wf.queue(None, Mail("seller_decision", (fresh["address"],), "decision", "seller",
                                 context={"seller": sellers.seller_card(fresh), "decision": decision,
                                          "reason": reason}), now)
        delivery = None
        if self.cfg.sellers.webhook_url:
            delivery = webhooks.add(self.store, self.cfg.sellers.webhook_url, fresh["id"],
                                    f"seller.{PAST[decision]}", {
                                        "at": iso(now), "decision": decision, "reason": reason, "by": by,
                                        "seller": {"id": fresh["id"], "shop_name": fresh["shop_name"],
                                                   "status": new, "previous_status": seller["status"]}}, now)
        log_event(f"seller_{PAST[decision]}", seller=fresh["id"], by=by, previous=seller["status"])
        return {"seller": fresh["id"], "shop_name": fresh["shop_name"], "previous": seller["status"],
                "status": new, "webhook": delivery}
