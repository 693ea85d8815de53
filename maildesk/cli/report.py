"""What admins read on the command line: a complaint's timeline, lists,
the daemon's status. Reads the store; decides nothing."""
from __future__ import annotations

import json
from datetime import datetime

from maildesk.cli import attachment
from maildesk.cli.display import shown
from maildesk.core import deadlines, parties, refs, timefmt
from maildesk.core.addresses import mailbox_key
from maildesk.store import files, reports
from maildesk.store.db import Store, from_iso, iso

LEVEL_NAMES = {1: "customer service", 2: "resolution team", 3: "customer experience team"}


def _local(value: datetime | None, tz) -> str:
    return timefmt.local(value, tz)


def reference(cfg, typed: str) -> str:
    """The complaint reference in what staff typed or pasted, read as forgivingly as a mail tag
    (case, spaces, brackets, O for 0); what they typed when it holds none (another prefix)."""
    return refs.read_reference(cfg.policy.reference_prefix, typed) or typed.strip().upper()


def deadline_states(row, cfg, now: datetime) -> list[dict]:
    """Each policy deadline: when, and whether it was met, missed or is ahead."""
    return [{"deadline": o.deadline, "label": o.label, "due": iso(o.due), "state": o.state}
            for o in deadlines.outcomes(from_iso(row["first_contact"]), row["status"], from_iso(row["resolved_at"]),
                                        now, cfg)]


def complaint_summary(row) -> dict:
    return {k: row[k] for k in ("ref", "status", "level", "customer_addr", "customer_name", "subject",
                                "order_number", "seller_id", "owner", "first_contact", "next_due",
                                "rating", "lang", "category", "merged_into")}


def show(store: Store, cfg, ref: str, now: datetime) -> dict | None:
    row = store.complaint(ref)
    if row is None:
        return None
    timeline, origin = [], {}

    def merged_from(item) -> dict:  # a row moved here by a merge names the complaint it came from
        if not item["merged_from"]:
            return {}
        if item["merged_from"] not in origin:
            origin[item["merged_from"]] = store.complaint_by_id(item["merged_from"])["ref"]
        return {"merged_from": origin[item["merged_from"]]}

    for ev in store.timeline(row["id"]):
        timeline.append({"at": ev["at"], "who": ev["actor"], "what": ev["kind"],
                         "detail": {**json.loads(ev["detail"] or "{}"), **merged_from(ev)}})
    for msg in store.messages(row["id"]):
        timeline.append({"at": msg["at"], "who": msg["from_addr"] if msg["direction"] == "in" else "maildesk",
                         "what": ("received " if msg["direction"] == "in" else "queued ") + msg["kind"],
                         "detail": {"to": msg["to_addrs"], "cc": ", ".join(json.loads(msg["cc_addrs"] or "[]")), "subject": msg["subject"], **merged_from(msg),
                                    "text": (msg["reply_text"] or msg["body"] or "")[:200]}})
    for out in reports.sent_for(store, row["id"]):
        if out["sent_at"]:
            timeline.append({"at": out["sent_at"], "who": "smtp", "what": f"{out['status']} {out['audience']}:{out['kind']}",
                             "detail": {"to": ", ".join(out["to"])}})
    timeline.sort(key=lambda e: e["at"])
    summary = {**complaint_summary(row), "cc": list(parties.stored(row))}  # the customer's Cc (issue 16)
    return {"complaint": summary, "deadlines": deadline_states(row, cfg, now), "timeline": timeline,
            "files": [attachment.as_dict(f, cfg) for f in files.of_complaint(store, row["id"])],
            "parts_not_read": attachment.unread_parts(store, row["id"])}


def format_show(doc: dict, cfg) -> str:
    c = doc["complaint"]
    tz = cfg.tz
    lines = [
        f"{c['ref']}  {c['subject']}",
        f"  customer : {c['customer_name']} <{c['customer_addr']}>" if c["customer_name"] else f"  customer : {c['customer_addr']}",
        f"  status   : {c['status']}, level {c['level']} ({LEVEL_NAMES[c['level']]})"
        + (f", owner {c['owner']}" if c["owner"] else "")
        + (f", merged into {c['merged_into']}" if c.get("merged_into") else ""),
        *([f"  in Cc    : {', '.join(c['cc'])}"] if c.get("cc") else []),
        f"  category : {c['category']}",
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
    if doc.get("files"):
        lines += ["", f"Files (maildesk attachment {c['ref']} N --out DIR writes one out):"]
        lines += attachment.lines(doc["files"], cfg)
    lines += [f"  note: {_local(from_iso(u['at']), tz)}  {u['note']}" for u in doc.get("parts_not_read", ())]
    return "\n".join(shown(line) for line in lines)


def list_complaints(store: Store, *, level=None, status=None, overdue_at=None, seller=None, customer=None,
                    limit: int = 200, cfg=None, category=None) -> list[dict]:
    """Newest first. `overdue_at`: only complaints open at that moment and past at least one
    policy deadline (24 h, 48 h, 5 days) they have not met; each says which in `missed`."""
    key = mailbox_key(customer) if customer else None  # every spelling of the mailbox (+tags, Gmail dots)
    if overdue_at is None:
        return [complaint_summary(r) for r in reports.complaints(store, level=level, status=status, seller=seller,
                                                                 customer_key=key, limit=limit, category=category)]
    out = []
    for r in reports.complaints(store, level=level, status=status, seller=seller, customer_key=key, open_only=True,
                                first_contact_by=deadlines.missable_before(overdue_at, cfg), category=category):
        missed = [d["deadline"] for d in deadline_states(r, cfg, overdue_at) if d["state"] == "missed"]
        if missed:
            out.append({**complaint_summary(r), "missed": missed})
            if len(out) >= limit:
                break
    return out
