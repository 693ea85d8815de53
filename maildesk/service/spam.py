"""The spam folder (\\Junk; Gmail keeps spam 30 days, then deletes it), read headers only.
Mail that is surely ours (one of our tags or Message-IDs, or DMARC-authenticated mail from a
known customer, seller or staff member) is moved to the inbox and handled like any other;
the rest is only listed for the digest and `maildesk spam list`. Nothing is answered from spam."""
from __future__ import annotations

from datetime import datetime

from maildesk.core import refs, trust
from maildesk.inbound.parse import ParseError, parse
from maildesk.logs import event as log_event
from maildesk.store import inbox as inbox_state
from maildesk.store.db import iso


def process_junk(cfg, store, inbox) -> int:
    """One look at the spam folder; returns how many mails were moved to the inbox."""
    folder = inbox.junk_folder_name()
    if not folder or folder == inbox.cfg.folder:
        return 0
    saved = inbox_state.state_json(store, "junk", {})
    known = {int(u): item for u, item in saved.get("items", {}).items()} if saved.get("folder") == folder else {}
    validity, uids, new = inbox.read_headers(folder, set(known), saved.get("validity"))
    if validity != saved.get("validity"):
        known = {}
    rescue = []
    for uid, header, arrived in new:
        item = junk_item(uid, header, arrived)
        why = rescue_reason(cfg, store, header)
        if why and not inbox.cfg.read_only:
            rescue.append(uid)
            log_event("spam_rescued", uid=uid, sender=item["sender"], why=why)
        else:
            known[uid] = item
    inbox.move_from(folder, rescue, inbox.cfg.folder)
    present = set(uids) - set(rescue)
    items = {str(u): i for u, i in known.items() if u in present}  # Gmail deletes spam after 30 days
    if items != saved.get("items") or validity != saved.get("validity") or folder != saved.get("folder"):
        with store.transaction():
            inbox_state.set_state_json(store, "junk", {"folder": folder, "validity": validity, "items": items})
    return len(rescue)


def rescue_reason(cfg, store, header: bytes) -> str | None:
    """Why a mail in spam is surely for us, or None."""
    try:
        mail = parse(header.rstrip(b"\r\n") + b"\r\n\r\n")
    except ParseError:
        return None
    for ref in refs.find_references(cfg.policy.reference_prefix, mail.subject):
        if store.complaint(ref) is not None:
            return f"our tag {ref}"
    for mid in (*mail.in_reply_to, *mail.references)[-50:]:
        if inbox_state.knows_message(store, mid):
            return "answers a message of ours"
    sender = mail.from_addr.lower()
    known = sender in cfg.staff or inbox_state.knows_sender(store, mail.from_addr)
    if known and trust.dmarc_pass(mail.auth_results, sender, cfg.security.authserv_id):
        return "known sender, dmarc=pass"
    return None


def junk_item(uid: int, header: bytes, arrived: datetime) -> dict:
    """What the digest shows of a mail in spam: never its body."""
    try:
        mail = parse(header.rstrip(b"\r\n") + b"\r\n\r\n")
        sender, subject = mail.from_addr, mail.subject[:120]
    except ParseError:
        sender, subject = "?", "?"
    return {"uid": uid, "sender": sender, "subject": subject, "at": iso(arrived)}
