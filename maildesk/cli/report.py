"""What admins read on the command line: a complaint's timeline, lists,
the daemon's status. Reads the store; decides nothing."""
from __future__ import annotations

import json
from datetime import datetime

from maildesk.core import policy, refs, timefmt
from maildesk.cli.display import shown
from maildesk.core.addresses import mailbox_key
from maildesk.store.db import Store, from_iso, iso
from maildesk.store.complaints import complaint_from_row

LEVEL_NAMES = {1: "customer service", 2: "resolution team", 3: "customer experience team"}


def _local(value: datetime | None, tz) -> str:
    return timefmt.local(value, tz)


def reference(cfg, typed: str) -> str:
    """The complaint reference in what staff typed or pasted, read as forgivingly as a mail tag
    (case, spaces, brackets, O for 0); what they typed when it holds none (another prefix)."""
    return refs.read_reference(cfg.policy.reference_prefix, typed) or typed.strip().upper()


def deadline_states(row, cfg, now: datetime) -> list[dict]:
    """Each policy deadline: when, and whether it was met, missed or is ahead."""
    c = complaint_from_row(row)
    due = policy.deadlines(c.first_contact, cfg)
    done_at = from_iso(row["resolved_at"]) if row["status"] in ("resolved", "closed") else None
    out = []
    for key, label in (("resolution_team", "24 h: resolved by customer service or passed to resolution team"),
                       ("findings", "48 h: findings given, or passed to customer experience team"),
                       ("target", "5 days: resolution target")):
        when = due[key]
        if done_at and done_at <= when:
            state = "met"
        elif now >= when:
            state = "missed" if not done_at or done_at > when else "met"
        else:
            state = "ahead"
        out.append({"deadline": key, "label": label, "due": iso(when), "state": state})
    return out


def complaint_summary(row) -> dict:
    return {k: row[k] for k in ("ref", "status", "level", "customer_addr", "customer_name", "subject",
                                "order_number", "seller_id", "owner", "first_contact", "next_due",
                                "rating", "lang")}


def show(store: Store, cfg, ref: str, now: datetime) -> dict | None:
    row = store.complaint(ref)
    if row is None:
        return None
    timeline = []
    for ev in store.timeline(row["id"]):
        timeline.append({"at": ev["at"], "who": ev["actor"], "what": ev["kind"],
                         "detail": json.loads(ev["detail"] or "{}")})
    for msg in store.messages(row["id"]):
        timeline.append({"at": msg["at"], "who": msg["from_addr"] if msg["direction"] == "in" else "maildesk",
                         "what": ("received " if msg["direction"] == "in" else "queued ") + msg["kind"],
                         "detail": {"to": msg["to_addrs"], "subject": msg["subject"],
                                    "text": (msg["reply_text"] or msg["body"] or "")[:200]}})
    for out in store.all("SELECT kind, audience, status, sent_at, attempts, last_error, rcpt FROM outbox "
                         "WHERE complaint_id = ? ORDER BY id", row["id"]):
        if out["sent_at"]:
            timeline.append({"at": out["sent_at"], "who": "smtp", "what": f"{out['status']} {out['audience']}:{out['kind']}",
                             "detail": {"to": ", ".join(json.loads(out["rcpt"]))}})
    timeline.sort(key=lambda e: e["at"])
    return {"complaint": complaint_summary(row), "deadlines": deadline_states(row, cfg, now), "timeline": timeline}


def format_show(doc: dict, cfg) -> str:
    c = doc["complaint"]
    tz = cfg.tz
    lines = [
        f"{c['ref']}  {c['subject']}",
        f"  customer : {c['customer_name']} <{c['customer_addr']}>" if c["customer_name"] else f"  customer : {c['customer_addr']}",
        f"  status   : {c['status']}, level {c['level']} ({LEVEL_NAMES[c['level']]})"
        + (f", owner {c['owner']}" if c["owner"] else ""),
        f"  first contact: {_local(from_iso(c['first_contact']), tz)}"
        + (f"   order: {c['order_number']}" if c["order_number"] else "")
        + (f"   seller: {c['seller_id']}" if c["seller_id"] else "")
        + (f"   rating: {c['rating']}/5" if c["rating"] else ""),
        "",
        "Deadlines:",
    ]
    for d in doc["deadlines"]:
        lines.append(f"  [{d['state']:>6}] {_local(from_iso(d['due']), tz)}  {d['label']}")
    lines += ["", "Timeline:"]
    for e in doc["timeline"]:
        detail = e["detail"]
        facts = " ".join(f"{k}={v}" for k, v in detail.items()
                         if v not in (None, "") and k not in ("text", "due"))
        lines.append(f"  {_local(from_iso(e['at']), tz)}  {e['what']:<28} {e['who'] or ''}  {facts}".rstrip())
        if detail.get("text"):
            first = " ".join(detail["text"].split())[:100]
            lines.append(f"{'':21}| {first}")
    return "\n".join(shown(line) for line in lines)


def list_complaints(store: Store, *, level=None, status=None, overdue_at=None, seller=None, customer=None,
                    limit: int = 200, cfg=None) -> list[dict]:
    """Newest first. `overdue_at`: only complaints open at that moment and past at least one
    policy deadline (24 h, 48 h, 5 days) they have not met; each says which in `missed`."""
    where, params = [], []
    if level:
        where.append("level = ?"); params.append(level)
    if status:
        where.append("status = ?"); params.append(status)
    if seller:
        where.append("seller_id = ?"); params.append(seller)
    if customer:
        # every spelling of the mailbox (+tags, Gmail dots): what the flood notice's count covers
        where.append("customer_key = ?"); params.append(mailbox_key(customer))
    if overdue_at is not None:
        earliest = min(policy.deadlines(overdue_at, cfg).values()) - overdue_at  # no deadline comes sooner
        where.append("status IN ('open', 'waiting_customer') AND first_contact <= ?")
        params.append(iso(overdue_at - earliest))
    sql = "SELECT * FROM complaints" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY first_contact DESC"
    if overdue_at is None:
        return [complaint_summary(r) for r in store.all(sql + " LIMIT ?", *params, limit)]
    out = []
    for r in store.all(sql, *params):
        missed = [d["deadline"] for d in deadline_states(r, cfg, overdue_at) if d["state"] == "missed"]
        if missed:
            out.append({**complaint_summary(r), "missed": missed})
            if len(out) >= limit:
                break
    return out
