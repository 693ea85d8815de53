"""The dispute policy (POLICY.md, P1-P10) as pure functions.

Each function takes a complaint's state, what happened and the time, and
returns a `Decision`: field changes, mails to queue and audit events, as
plain values. Nothing here touches a socket, a file or the database, so a
policy test is a comparison of lists. `workflow.py` carries decisions out.

Deadlines count from first contact (P7-P10). A sweep acts on everything
due *now*, once: after three days of downtime a complaint goes straight to
level 3 with one mail to the customer, not one mail per missed step.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Mapping
from datetime import datetime, timedelta

from maildesk.config import Config
from maildesk.core.decisions import Changes

LEVEL_TEAMS = {1: "customer_service", 2: "resolution", 3: "customer_experience"}
OPEN_STATUSES = ("open", "waiting_customer")


@dataclass(frozen=True)
class Complaint:
    """What the policy needs to know of a complaint."""
    ref: str
    customer_addr: str
    lang: str
    level: int
    status: str  # open | waiting_customer | resolved | closed
    first_contact: datetime
    owner: str | None = None
    last_customer_update_at: datetime | None = None
    findings_reminded_at: datetime | None = None
    target_warned_at: datetime | None = None
    target_missed_at: datetime | None = None
    satisfaction_asked_at: datetime | None = None
    satisfaction_reminded_at: datetime | None = None
    resolved_at: datetime | None = None
    first_staff_answer_at: datetime | None = None
    rating: int | None = None
    auto_level: int = 1  # the level the clock has escalated to: its steps happen once
    category: str = "autre"  # core/categories.py


@dataclass(frozen=True)
class Mail:
    """A mail to render and queue. `to` is filled in by the policy."""
    template: str
    to: tuple[str, ...]
    kind: str
    audience: str  # customer | staff | admin | seller
    routine: bool = False  # may wait when the sending quota is tight
    context: dict = field(default_factory=dict)
    carry: str = ""  # stored files it carries: "message", "complaint", "evidence" (service/mail_files.py)


@dataclass(frozen=True)
class Event:
    kind: str
    detail: dict = field(default_factory=dict)


@dataclass
class Decision:
    changes: Changes = field(default_factory=Changes)
    mails: list[Mail] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def tell_customer(self, c: Complaint, template: str, kind: str, now: datetime, *, carry="", **context) -> None:
        self.mails.append(Mail(template, (c.customer_addr,), kind, "customer", context=context, carry=carry))
        self.changes["last_customer_update_at"] = now

    def tell_staff(self, to, template: str, kind: str, *, carry: str = "", **context) -> None:
        if to:
            self.mails.append(Mail(template, tuple(to), kind, "staff", context=context, carry=carry))

    def event(self, kind: str, **detail) -> None:
        self.events.append(Event(kind, detail))


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def deadlines(first_contact: datetime, cfg: Config) -> dict[str, datetime]:
    p = cfg.policy
    return {
        "resolution_team": first_contact + hours(p.escalate_to_resolution_hours),
        "findings_reminder": first_contact + hours(p.findings_due_hours - p.findings_reminder_hours_before),
        "findings": first_contact + hours(p.findings_due_hours),
        "experience_team": first_contact + hours(p.escalate_to_experience_hours),
        "target_warning": first_contact + timedelta(days=p.resolution_target_days) - hours(p.target_warning_hours),
        "target": first_contact + timedelta(days=p.resolution_target_days),
    }


def handlers(c: Complaint, cfg: Config) -> tuple[str, ...]:
    """Who is notified of news on a complaint: its owner, else its level's team."""
    if c.owner:
        return (c.owner,)
    return tuple(cfg.team(c.level))


def apply(c: Complaint, changes: Mapping) -> Complaint:
    known = {k: v for k, v in changes.items() if k in Complaint.__dataclass_fields__}
    return replace(c, **known)


# --- events ------------------------------------------------------------------

def open_complaint(c: Complaint, now: datetime, cfg: Config, *, send_ack: bool = True, notify_staff: bool = True,
                   seller_hint: str | None = None, contact_request: bool = False,
                   unreachable: str | None = None) -> Decision:
    """P1-P3, P6: a new complaint is acknowledged with its reference and sent to level 1.
    A first message asking for the seller's details (P12) is answered in the
    acknowledgement: imolocale contacts the seller first (P11); staff see it too.
    `notify_staff=False`: a flooding mailbox's complaint, told to staff in one coalesced notice.
    `unreachable`: why mail cannot go to the customer's address: the complaint is kept and
    staff are told why, nothing is queued to the customer."""
    d = Decision()
    d.event("opened", level=1, customer=c.customer_addr)
    if contact_request:
        d.event("seller_contact_requested", seller=None, outcome="explain")
    if send_ack and unreachable:
        d.changes["last_customer_update_at"] = now  # the update clock starts as for any answered complaint
    elif send_ack:
        d.tell_customer(c, "ack", "ack", now, deadlines=deadlines(c.first_contact, cfg),
                        contact_request=contact_request)
        d.changes["acked_at"] = now
    else:
        d.event("ack_suppressed", reason="too many automatic replies to this address in the last hour")
    why = {"unreachable": unreachable} if unreachable else {}
    if notify_staff:
        d.tell_staff(handlers(c, cfg), "staff_new", "notify", carry="message", seller_hint=seller_hint,
                     contact_request=contact_request, **why)
    else:
        d.event("notify_coalesced", reason="flood: staff get one notice an hour for this mailbox")
    if unreachable:
        d.event("unreachable_address", reason=unreachable)
    return d


def customer_message(c: Complaint, now: datetime, cfg: Config, text: str) -> Decision:
    """A customer wrote again: maybe a satisfaction answer (P5), else news for the handlers."""
    d = Decision()
    if c.status in ("resolved", "closed") and c.satisfaction_asked_at and c.rating is None:
        score, satisfied = parse_rating(text, cfg.policy.low_rating)
        if satisfied is not None:
            return _rated(c, now, cfg, score, satisfied, text)
    if c.status in ("resolved", "closed", "imported"):  # imported history: news makes it live again
        d.changes.update(status="open", resolved_at=None, closed_at=None,
                         satisfaction_asked_at=None, satisfaction_reminded_at=None)
        d.event("reopened", reason="customer wrote again")
    elif c.status == "waiting_customer":
        d.changes["status"] = "open"
        d.event("customer_answered")
    d.tell_staff(handlers(c, cfg), "staff_reply", "notify", carry="message")
    return d


def _rated(c: Complaint, now: datetime, cfg: Config, score: int | None, satisfied: bool, text: str) -> Decision:
    d = Decision()
    d.changes.update(rating=score if score is not None else (5 if satisfied else 1),
                     rating_text=text.strip()[:200], rated_at=now)
    d.event("rated", score=score, satisfied=satisfied)
    # not satisfied: the customer may take it to the consumer mediator (L.612-1), within a year (L.612-2)
    d.tell_customer(c, "thanks_rating", "thanks", now, satisfied=satisfied,
                    mediation=not satisfied and cfg.mediation.configured)
    if satisfied:
        if c.status != "closed":
            d.changes.update(status="closed", closed_at=now)
            d.event("closed", reason="customer satisfied")
        return d
    level = min(c.level + 1, 3)
    d.changes.update(status="open", level=level, owner=None, resolved_at=None, closed_at=None,
                     satisfaction_asked_at=None, satisfaction_reminded_at=None)
    d.event("reopened", reason="customer not satisfied", score=score)
    if level != c.level:
        d.event("escalated", level=level, reason="dissatisfied")
    d.tell_staff(tuple(cfg.team(level)), "staff_dissatisfied", "notify", carry="message", score=score, level=level)
    return d


def resolve(c: Complaint, now: datetime, cfg: Config, note: str, actor: str) -> Decision:
    """P5: tell the customer it is resolved and ask how satisfied they are."""
    d = Decision()
    if c.status in ("resolved", "closed"):
        d.event("resolve_ignored", reason=f"already {c.status}", actor=actor)
        return d
    d.changes.update(status="resolved", resolved_at=now, satisfaction_asked_at=now,
                     satisfaction_reminded_at=None, rating=None, rating_text=None, rated_at=None)
    d.event("resolved", actor=actor, level=c.level)
    d.tell_customer(c, "resolution", "resolution", now, carry="message", note=note)
    return d


def staff_answer(c: Complaint, now: datetime, cfg: Config, text: str, actor: str, *, ask: bool = False) -> Decision:
    """P4/P8: a staff answer goes to the customer and counts as the update."""
    d = Decision()
    kind = "ask" if ask else "relay"
    d.tell_customer(c, "relay", kind, now, carry="message", text=text, ask=ask)
    if c.first_staff_answer_at is None:
        d.changes["first_staff_answer_at"] = now
    if ask:
        d.changes["status"] = "waiting_customer"
    elif c.status in ("resolved", "closed"):
        d.changes.update(status="open", resolved_at=None, closed_at=None, satisfaction_asked_at=None,
                         satisfaction_reminded_at=None)
    d.event("staff_asked" if ask else "staff_answered", staff=actor)
    return d


def staff_update_seen(c: Complaint, at: datetime, actor: str) -> Decision:
    """Shared-mailbox mode: staff wrote to the customer from Gmail itself;
    it counts as the customer's update (P4) though we did not send it."""
    d = Decision()
    d.changes["last_customer_update_at"] = max(at, c.last_customer_update_at or at)
    if c.first_staff_answer_at is None or at < c.first_staff_answer_at:
        d.changes["first_staff_answer_at"] = at
    d.event("staff_answered", staff=actor, via="shared mailbox")
    return d


def move_to_level(c: Complaint, now: datetime, cfg: Config, level: int, actor: str, reason: str) -> Decision:
    """A staff decision to change level: the new team and the customer are told."""
    d = Decision()
    if level == c.level:
        d.event("level_unchanged", level=level, staff=actor)
        return d
    d.changes.update(level=level, owner=None)
    d.event("escalated" if level > c.level else "level_lowered", level=level, reason=reason, staff=actor)
    moved = replace(c, level=level, owner=None)
    if level > c.level:
        d.tell_customer(c, f"escalated_{level}", "escalation", now, level=level, manual=True)
    d.tell_staff(handlers(moved, cfg), "staff_escalated", "escalation", carry="complaint", level=level, manual=True,
                 by=actor, deadlines=deadlines(c.first_contact, cfg))
    return d


def assign(c: Complaint, owner: str, actor: str = "") -> Decision:
    """Staff make a colleague the owner: news goes to her from now on, starting with the complaint."""
    d = Decision()
    d.changes["owner"] = owner
    d.event("assigned", owner=owner)
    if owner != actor.lower():
        d.tell_staff((owner,), "staff_assigned", "notify", carry="complaint", by=actor)
    return d


def reopen(c: Complaint, now: datetime, actor: str) -> Decision:
    d = Decision()
    if c.status in OPEN_STATUSES:
        d.event("reopen_ignored", reason="already open", staff=actor)
        return d
    d.changes.update(status="open", resolved_at=None, closed_at=None, satisfaction_asked_at=None,
                     satisfaction_reminded_at=None)
    d.event("reopened", reason="staff", staff=actor)
    return d


def sweep(c: Complaint, now: datetime, cfg: Config) -> Decision:
    """Everything the clock demands of one complaint at `now`, each at most once."""
    d = Decision()
    if c.status in OPEN_STATUSES:
        _escalations(c, now, cfg, d)
    elif c.status == "resolved":
        _satisfaction(c, now, cfg, d)
    return d


def _escalations(c: Complaint, now: datetime, cfg: Config, d: Decision) -> None:
    due = deadlines(c.first_contact, cfg)
    step = None
    if now >= due["experience_team"] and c.auto_level < 3:
        step, reason = 3, "48h"
    elif now >= due["resolution_team"] and c.auto_level < 2:
        step, reason = 2, "24h"
    level = c.level
    if step:
        d.changes["auto_level"] = step  # done once, even when staff had already moved it
        if step > c.level:
            level = step
            d.event("escalated", level=step, reason=reason, due=due["resolution_team" if step == 2 else "experience_team"])
    if level != c.level:
        escalated = replace(c, level=level, owner=None)
        d.changes.update(level=level, owner=None)
        d.tell_customer(c, f"escalated_{level}", "escalation", now, level=level)
        d.tell_staff(handlers(escalated, cfg), "staff_escalated", "escalation", carry="complaint", level=level,
                     deadlines=due)
    if (level == 2 and c.findings_reminded_at is None
            and due["findings_reminder"] <= now < due["findings"]):
        d.changes["findings_reminded_at"] = now
        d.event("findings_reminder", due=due["findings"])
        d.tell_staff(handlers(c, cfg) if c.level == 2 else cfg.team(2), "staff_findings_reminder",
                     "reminder", due=due["findings"])
    if now >= due["target"] and c.target_missed_at is None:
        d.changes["target_missed_at"] = now
        d.event("target_missed", due=due["target"])
        d.tell_staff(cfg.team(3), "staff_target", "report", missed=True, due=due["target"])
        if cfg.mediation.configured:  # the customer may now go to the consumer mediator (L.612-1)
            d.tell_customer(c, "mediation", "mediation", now, due=due["target"])
    elif due["target_warning"] <= now < due["target"] and c.target_warned_at is None:
        d.changes["target_warned_at"] = now
        d.event("target_at_risk", due=due["target"])
        d.tell_staff(cfg.team(3), "staff_target", "report", missed=False, due=due["target"])
    last = c.last_customer_update_at or c.first_contact
    if "last_customer_update_at" not in d.changes and now >= last + hours(cfg.policy.update_every_hours):
        d.tell_customer(c, "update", "update", now, level=level)
        d.event("update_sent", since=last)
        d.mails[-1] = replace(d.mails[-1], routine=True)


def _satisfaction(c: Complaint, now: datetime, cfg: Config, d: Decision) -> None:
    wait = timedelta(days=cfg.policy.satisfaction_wait_days)
    if c.satisfaction_asked_at is None:
        return
    if c.satisfaction_reminded_at is None:
        if now >= c.satisfaction_asked_at + wait:
            d.changes["satisfaction_reminded_at"] = now
            d.event("satisfaction_reminder")
            d.tell_customer(c, "satisfaction_reminder", "reminder", now)
    elif now >= c.satisfaction_reminded_at + wait:
        d.changes.update(status="closed", closed_at=now)
        d.event("closed", reason="no satisfaction answer")


def next_due(c: Complaint, cfg: Config, after: datetime | None = None) -> datetime | None:
    """The earliest moment `sweep` may do something for this complaint.

    Right after a sweep at `after`, moments not later than it were already
    acted on or are no-ops for this state, so they are skipped: the sweep
    never reads the same complaint twice for nothing."""
    moments: list[datetime] = []
    if c.status in OPEN_STATUSES:
        due = deadlines(c.first_contact, cfg)
        if c.auto_level < 2:
            moments.append(due["resolution_team"])
        if c.auto_level < 3:
            moments.append(due["experience_team"])
        if c.level <= 2 and c.findings_reminded_at is None and due["findings_reminder"] < due["findings"]:
            moments.append(due["findings_reminder"])
        if c.target_missed_at is None:
            moments.append(due["target"] if c.target_warned_at else min(due["target_warning"], due["target"]))
        last = c.last_customer_update_at or c.first_contact
        moments.append(last + hours(cfg.policy.update_every_hours))
    elif c.status == "resolved" and c.satisfaction_asked_at:
        wait = timedelta(days=cfg.policy.satisfaction_wait_days)
        moments.append((c.satisfaction_reminded_at or c.satisfaction_asked_at) + wait)
    if after is not None:
        moments = [m for m in moments if m > after]
    return min(moments) if moments else None


# --- reading a satisfaction answer -------------------------------------------

_INTENSITY = r"(?:(?:du tout|at all|tres|vraiment|really|very|totally|completement|entierement|fully)\s+)*"
_NEGATIVE = re.compile(
    r"\b(?:pas|non|not|un|in|dis|peu|never|jamais)\s*-?\s*" + _INTENSITY +
    r"(?:satisf\w*|content\w*|happy|resolu\w*|resolved|ravi\w*)"
    r"|\b(?:mecontent\w*|decu\w*|nul|mauvais\w*|bad|poor|terrible|horrible)\b"
    r"|^(?:non|no|nope)\b")
_POSITIVE = re.compile(
    r"\b(?:satisf\w*|content\w*|happy|parfait\w*|excellent\w*|super|ravi\w*|great|perfect|"
    r"resolu\w*|resolved)\b|^(?:oui|yes|ok|d'accord)\b")
_DOUBT = re.compile(r"\b(?:mais|but|toujours|still|however|cependant|pourtant)\b|\?")
_SCORE_OUT_OF = re.compile(r"^(?:note|score|rating)?\s*:?\s*([1-5])\s*(?:/|sur|out of|on)\s*5\b")
_SCORE_STARS = re.compile(r"^(?:note|score|rating)?\s*:?\s*([1-5])\s*(?:etoiles?|stars?)\b")
_SCORE_BARE = re.compile(r"^(?:note|score|rating)?\s*:?\s*([1-5])\s*(?:[-:,.!)]+.*)?$")


def plain(text: str) -> str:
    """Lower case without accents, so "Très satisfaite" reads like "tres satisfaite"."""
    folded = unicodedata.normalize("NFKD", (text or "").lower())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).replace("\u2019", "'")


def parse_rating(text: str, low_rating: int = 2) -> tuple[int | None, bool | None]:
    """(score 1-5 or None, satisfied?) read from the first lines of an answer;
    (None, None) when the text is not a rating, so it is handled as news."""
    lines = [plain(ln.strip()) for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return None, None
    first = lines[0][:200]
    for pattern in (_SCORE_OUT_OF, _SCORE_STARS, _SCORE_BARE):
        m = pattern.match(first)
        if m:
            score = int(m.group(1))
            return score, score > low_rating
    head = " ".join(lines[:2])[:300]
    if _NEGATIVE.search(head):
        return None, False
    if _POSITIVE.search(head) and not _DOUBT.search(head) and len(head) <= 120:
        return None, True
    return None, None
