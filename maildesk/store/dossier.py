"""What the dossier (service/dossier.py) shows of one complaint: the customer's own messages, the mail
we sent them, the steps taken, each with its time. Never staff notes or staff-only mail."""
from __future__ import annotations

import sqlite3

from maildesk.store.db import Store

STEPS = ("opened", "escalated", "level_lowered", "staff_answered", "staff_asked", "resolved", "reopened",
         "rated", "closed", "target_missed", "seller_contact_requested", "seller_details_disclosed")


def customer_messages(store: Store, complaint_id: int) -> list[sqlite3.Row]:
    return store.all("SELECT id, at, subject, body, reply_text FROM messages "
                     "WHERE complaint_id = ? AND direction = 'in' AND kind = 'customer' ORDER BY at, id", complaint_id)


def mails_to_customer(store: Store, complaint_id: int) -> list[sqlite3.Row]:
    return store.all("SELECT id, at, subject, body FROM messages WHERE complaint_id = ? AND direction = 'out' "
                     "AND kind LIKE 'customer:%' AND kind != 'customer:dossier' ORDER BY at, id", complaint_id)


def steps(store: Store, complaint_id: int) -> list[sqlite3.Row]:
    marks = ", ".join("?" for _ in STEPS)
    return store.all(f"SELECT at, kind, detail FROM events WHERE complaint_id = ? AND kind IN ({marks}) "
                     "ORDER BY at, id", complaint_id, *STEPS)


def attachment_names(store: Store, message_ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.all(f"SELECT message_row, filename FROM attachments WHERE message_row IN ({marks}) "
                             "ORDER BY id", *chunk):
            names.setdefault(row["message_row"], []).append(row["filename"])
    return names
