"""Named queries for merging complaint A into B (service/merging.py): the rows move under
B, each keeping the id of the complaint it first belonged to (`merged_from`), and mail that
names A finds B."""
from __future__ import annotations

from dataclasses import dataclass

from maildesk.store.db import Store
from maildesk.store.sql import recent_ids


@dataclass(frozen=True)
class Moved:
    messages: int
    attachments: int  # they belong to the messages and move with them
    events: int
    outreach: int = 0  # A's seller outreach: the seller's answer, reminders and strikes now count on B


def move(store: Store, source_id: int, target_id: int, source_ref: str, target_ref: str) -> Moved:
    """Move A's messages (with their attachments), events and seller outreach under B (B takes A's
    seller when it has none); complaints that were merged into A now point at B, so following a
    merge is always one step."""
    attachments = store.scalar("SELECT count(*) FROM attachments WHERE message_row IN "
                               "(SELECT id FROM messages WHERE complaint_id = ?)", source_id)
    messages = store.conn.execute(
        "UPDATE messages SET merged_from = COALESCE(merged_from, complaint_id), complaint_id = ? "
        "WHERE complaint_id = ?", (target_id, source_id)).rowcount
    events = store.conn.execute(
        "UPDATE events SET merged_from = COALESCE(merged_from, complaint_id), complaint_id = ? "
        "WHERE complaint_id = ?", (target_id, source_id)).rowcount
    outreach = store.conn.execute("UPDATE outreach SET complaint_id = ? WHERE complaint_id = ?",
                                  (target_id, source_id)).rowcount
    store.conn.execute("UPDATE complaints SET seller_id = (SELECT seller_id FROM complaints WHERE id = ?) "
                       "WHERE id = ? AND seller_id IS NULL", (source_id, target_id))
    store.conn.execute("UPDATE complaints SET merged_into = ? WHERE merged_into = ?", (target_ref, source_ref))
    return Moved(messages, attachments, events, outreach)


def survivor(store: Store, row):
    """The complaint mail naming `row` joins: itself, or the one it was merged into."""
    if row is None or not row["merged_into"]:
        return row
    return store.complaint(row["merged_into"]) or row


def origins_of_message_ids(store: Store, message_ids) -> list:
    """The complaints these Message-IDs first belonged to (before any merge), so that the
    sender is checked against the complaint they wrote to, then followed to its survivor."""
    ids, marks = recent_ids(message_ids)
    if not ids:
        return []
    return store.all(f"SELECT DISTINCT c.* FROM messages m JOIN complaints c "
                     f"ON c.id = COALESCE(m.merged_from, m.complaint_id) WHERE m.message_id IN ({marks})", *ids)
