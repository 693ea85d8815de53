"""Named queries the workflow and the seller desk run on complaints, their
messages, the outbox and the audit trail. The service asks for facts here and
never writes SQL itself, so a second database implements this file, not the
workflow."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime

from maildesk.core import parties, policy
from maildesk.core.sellers import UNLINKED, RequestFacts
from maildesk.store.db import Store, from_iso, iso


def complaint_from_row(row) -> policy.Complaint:
    """The one place a complaints row becomes the policy's `Complaint`."""
    values = {}
    for f in fields(policy.Complaint):
        value = row[f.name]
        if f.name.endswith("_at") or f.name == "first_contact":
            value = from_iso(value)
        values[f.name] = value
    return policy.Complaint(**values)


@dataclass(frozen=True)
class Threading:
    """In-Reply-To and References that keep a mail in its reader's conversation."""
    parent: str | None
    chain: list[str]


def we_queued(store: Store, message_id: str) -> bool:
    """Did we write a mail with this Message-ID (it sits in our outbox)?"""
    return store.one("SELECT 1 FROM outbox WHERE message_id = ?", message_id) is not None


def we_queued_any(store: Store, message_ids) -> bool:
    ids = list(message_ids)
    if not ids:
        return False
    marks = ", ".join("?" for _ in ids)
    return store.one(f"SELECT 1 FROM outbox WHERE message_id IN ({marks}) LIMIT 1", *ids) is not None


def message_recorded(store: Store, message_id: str) -> bool:
    return store.one("SELECT 1 FROM messages WHERE message_id = ?", message_id) is not None


def count_sent_elsewhere(store: Store, message_id: str, sent_at: datetime, recipients: int) -> None:
    """A mail staff sent from the account itself counts against the daily limit, once."""
    store.conn.execute("INSERT OR IGNORE INTO sent_elsewhere(message_id, sent_at, recipients) VALUES (?, ?, ?)",
                       (message_id, iso(sent_at), recipients))


def unlisted_told_since(store: Store, address: str, since: datetime) -> bool:
    """Was this unlisted colleague told how to be added since then?"""
    return store.one("SELECT 1 FROM outbox WHERE rcpt = ? AND kind = 'staff_unlisted' AND created_at >= ?",
                     json.dumps([address]), iso(since)) is not None


def threading(store: Store, complaint_id: int, audience: str) -> Threading:
    if audience == "customer":
        rows = store.all("SELECT message_id, direction FROM messages WHERE complaint_id = ? AND "
                         "(kind = 'customer' OR kind LIKE 'customer:%') ORDER BY at, id", complaint_id)
    else:
        rows = store.all("SELECT message_id, direction FROM messages WHERE complaint_id = ? AND "
                         "kind LIKE ? ORDER BY at, id", complaint_id, f"{audience}:%")
    ids = [r["message_id"] for r in rows]
    inbound = [r["message_id"] for r in rows if r["direction"] == "in"]
    parent = inbound[-1] if inbound else (ids[-1] if ids else None)
    return Threading(parent, ids[:1] + ids[1:][-9:])


def shown_history(store: Store, complaint_id: int, unshown: tuple[str, ...], limit: int) -> list[dict]:
    """The latest messages staff notifications show, newest first (`unshown` kinds left out)."""
    rows = store.all(
        "SELECT direction, kind, at, from_addr, subject, reply_text, body FROM messages "
        f"WHERE complaint_id = ? AND ((direction = 'in' AND kind NOT IN ({','.join('?' * len(unshown))})) "
        "OR kind LIKE 'customer:%') "
        "ORDER BY at DESC, id DESC LIMIT ?", complaint_id, *unshown, limit)
    return [{**dict(r), "at": from_iso(r["at"])} for r in rows]


def first_customer_message(store: Store, complaint_id: int) -> dict | None:
    row = store.one("SELECT reply_text, body FROM messages WHERE complaint_id = ? AND direction = 'in' "
                    "AND kind = 'customer' ORDER BY at, id LIMIT 1", complaint_id)
    return dict(row) if row else None


def outbox_copy(store: Store, message_id: str):
    """(raw, rcpt) of a queued mail, or None."""
    return store.one("SELECT raw, rcpt FROM outbox WHERE message_id = ?", message_id)


def request_facts(store: Store, complaint_id: int, outreach_state: str = UNLINKED) -> RequestFacts:
    """What the audit trail says of the customer's requests for the seller's details (P12),
    in one read: the order of the events is what counts, so they are read in id order."""
    rows = store.all("SELECT id, at, kind, detail FROM events WHERE complaint_id = ? AND kind IN "
                     "('seller_contact_requested', 'seller_details_disclosed', 'seller_outreach_failed') "
                     "ORDER BY id", complaint_id)
    requests, last = [], {}
    for r in rows:
        last[r["kind"]] = r["id"]
        if r["kind"] == "seller_contact_requested":
            requests.append({"at": from_iso(r["at"]), **json.loads(r["detail"] or "{}")})
    return RequestFacts(outreach_state=outreach_state, requests=tuple(requests),
                        last_request=last.get("seller_contact_requested"),
                        last_disclosure=last.get("seller_details_disclosed"),
                        last_failure=last.get("seller_outreach_failed"))


def drop_cc(store: Store, complaint, failed, at: datetime, actor: str, why: str) -> None:
    """Addresses of the complaint's Cc whose delivery failed leave it (`cc_dropped` says which and why)."""
    kept = [a for a in parties.stored(complaint) if a not in failed]
    store.update("complaints", complaint["id"], {"cc_addrs": json.dumps(kept)})
    store.add_event(complaint["id"], at, actor, "cc_dropped", addresses=list(failed), why=why)
