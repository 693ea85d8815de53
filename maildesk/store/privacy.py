"""Personal data in SQL (issue 17): finding one person's rows for `privacy export`, anonymising
one complaint, erasing what a person wrote on other complaints, the erasure audit, and making
deleted bytes go from the file (secure_delete, FTS5 merged, WAL truncated).

Writes expect the caller's open `Store.transaction()`; `scrub_file` runs outside one.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from maildesk.core import privacy
from maildesk.core.addresses import mailbox_key
from maildesk.store.db import Store, iso
from maildesk.store.outbox import OutboxRows

WAITING = ("queued", "failed")



# --- reading (export, dry run) -------------------------------------------------------------
def complaints_of(store: Store, address: str) -> list[sqlite3.Row]:
    """The complaints where the person is the customer (every spelling: the mailbox key)."""
    return store.all("SELECT * FROM complaints WHERE customer_key = ? ORDER BY opened_at, id", mailbox_key(address))


def messages_from(store: Store, address: str) -> list[sqlite3.Row]:
    """Every message the person sent, on any complaint (theirs, or one they were copied on)."""
    return store.all("SELECT m.*, c.ref FROM messages m LEFT JOIN complaints c ON c.id = m.complaint_id "
                     "WHERE m.direction = 'in' AND m.from_addr IS NOT NULL AND mailbox_key(m.from_addr) = ? "
                     "ORDER BY m.at, m.id", mailbox_key(address))


def mail_to(store: Store, address: str, complaint_ids: list[int]) -> list[sqlite3.Row]:
    """Our mail to the person: outbox rows addressed to them (raw kept), and for their complaints
    every outgoing customer mail recorded."""
    marks = ",".join("?" * len(complaint_ids)) or "NULL"
    return store.all(f"SELECT o.*, c.ref FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id "
                     f"WHERE o.rcpt_key = ? OR instr(lower(o.rcpt), ?) > 0 "
                     f"OR (o.complaint_id IN ({marks}) AND o.audience = 'customer') ORDER BY o.created_at, o.id",
                     mailbox_key(address), address.strip().lower(), *complaint_ids)


def disclosures(store: Store, complaint_ids: list[int]) -> list[sqlite3.Row]:
    """Each time the person's details or evidence went to a seller."""
    marks = ",".join("?" * len(complaint_ids)) or "NULL"
    return store.all(f"SELECT e.*, c.ref FROM events e JOIN complaints c ON c.id = e.complaint_id "
                     f"WHERE e.complaint_id IN ({marks}) AND (e.kind IN ('seller_details_disclosed', "
                     f"'seller_contacted', 'seller_contact_requested') OR e.kind LIKE '%evidence%') "
                     f"ORDER BY e.at, e.id", *complaint_ids)


def seller_record(store: Store, seller_id: str) -> dict | None:
    seller = store.one("SELECT * FROM sellers WHERE id = ? COLLATE NOCASE", seller_id)
    if seller is None:
        return None
    sid = seller["id"]
    return {"seller": dict(seller),
            "events": [dict(r) for r in store.all("SELECT * FROM seller_events WHERE seller_id = ? ORDER BY at, id", sid)],
            "strikes": [dict(r) for r in store.all("SELECT * FROM seller_strikes WHERE seller_id = ? ORDER BY at, id", sid)],
            "outreach": [dict(r) for r in store.all("SELECT o.*, c.ref FROM outreach o JOIN complaints c "
                                                    "ON c.id = o.complaint_id WHERE o.seller_id = ? "
                                                    "ORDER BY o.sent_at, o.id", sid)],
            "messages": store.all("SELECT m.*, c.ref FROM messages m LEFT JOIN complaints c ON c.id = m.complaint_id "
                                  "WHERE m.direction = 'in' AND lower(m.from_addr) = lower(?) ORDER BY m.at, m.id",
                                  seller["address"])}


def seller_addresses(store: Store) -> set[str]:
    return {r[0] for r in store.all("SELECT address FROM sellers")}


def plan(store: Store, address: str) -> dict:
    """What an erase would touch, counted (the dry run)."""
    key = mailbox_key(address)
    own = store.all("SELECT id, ref, status FROM complaints WHERE customer_key = ?", key)
    ids = [r["id"] for r in own]
    marks = ",".join("?" * len(ids)) or "NULL"
    others = store.scalar(f"SELECT count(*) FROM messages WHERE direction = 'in' AND from_addr IS NOT NULL "
                          f"AND mailbox_key(from_addr) = ? AND (complaint_id IS NULL OR complaint_id NOT IN ({marks}))",
                          key, *ids)
    return {"complaints": len(own), "open": [r["ref"] for r in own if r["status"] in ("open", "waiting_customer")],
            "messages": store.scalar(f"SELECT count(*) FROM messages WHERE complaint_id IN ({marks})", *ids) + others,
            "messages_elsewhere": others,
            "attachments": store.scalar(f"SELECT count(*) FROM attachments a JOIN messages m ON m.id = a.message_row "
                                        f"WHERE m.complaint_id IN ({marks}) OR (m.direction = 'in' AND "
                                        f"m.from_addr IS NOT NULL AND mailbox_key(m.from_addr) = ?)", *ids, key),
            "outbox_waiting": store.scalar(f"SELECT count(*) FROM outbox WHERE status IN ('queued', 'failed') AND "
                                           f"(rcpt_key = ? OR complaint_id IN ({marks}))", key, *ids),
            "quarantine": store.scalar("SELECT count(*) FROM quarantine WHERE sender IS NOT NULL "
                                       "AND mailbox_key(sender) = ?", key)}


def erased_before(store: Store, digest: str) -> list[sqlite3.Row]:
    return store.all("SELECT at, actor, detail FROM events WHERE complaint_id IS NULL AND kind = 'privacy_erased' "
                     "AND json_extract(detail, '$.hash') = ? ORDER BY at", digest)


# --- anonymising one complaint (the erase and the retention sweep) ----------------------------
def anonymise_complaint(store: Store, complaint_id: int, now: datetime, by: str) -> dict:
    """Every personal text of one complaint replaced, its statistics kept; counts of rows touched.
    Idempotent: a second run finds the same rows and writes the same values."""
    c = store.one("SELECT id, ref, customer_key FROM complaints WHERE id = ?", complaint_id)
    if c is None:
        return {}
    address = privacy.erased_address(c["ref"])
    conn = store.conn
    counts = {"messages": conn.execute(
        "UPDATE messages SET subject = ?, body = ?, reply_text = NULL, raw = NULL, to_addrs = NULL, cc_addrs = NULL, "
        # every sender but staff and sellers (their work addresses) goes: the customer, anyone in Cc
        "from_addr = CASE WHEN direction = 'in' AND from_addr IS NOT NULL AND (mailbox_key(from_addr) = ? "
        "OR (kind NOT LIKE 'staff%' AND kind != 'seller')) THEN ? ELSE from_addr END WHERE complaint_id = ?",
        (privacy.ERASED, privacy.ERASED, c["customer_key"], address, complaint_id)).rowcount}
    conn.execute("DELETE FROM search_index WHERE rowid IN (SELECT id * 4 + 1 FROM messages WHERE complaint_id = ?)",
                 (complaint_id,))
    counts["attachments"], counts["files"] = _erase_attachments(
        store, "SELECT id FROM messages WHERE complaint_id = ?", (complaint_id,))
    conn.execute("UPDATE events SET actor = ? WHERE complaint_id = ? AND instr(actor, '@') > 0 "
                 "AND mailbox_key(actor) = ?", (address, complaint_id, c["customer_key"]))
    counts["events"] = _scrub_events(store, "events", "complaint_id = ?", (complaint_id,))
    counts["events"] += _scrub_events(  # by seller first: seller_events has no index on complaint_id
        store, "seller_events", "seller_id IN (SELECT seller_id FROM outreach WHERE complaint_id = ? UNION "
        "SELECT seller_id FROM complaints WHERE id = ?) AND complaint_id = ?", (complaint_id,) * 3)
    conn.execute("DELETE FROM search_index WHERE rowid IN "
                 "(SELECT id * 4 + 2 FROM events WHERE complaint_id = ? AND kind = 'note')", (complaint_id,))
    rows = OutboxRows(store)
    # the outbox has no index on complaint_id: its rows are found by the messages row each one has
    # (service/workflow.py queue), through the outbox's unique Message-ID
    ours = "message_id IN (SELECT message_id FROM messages WHERE complaint_id = ? AND direction = 'out')"
    waiting = store.all(f"SELECT id FROM outbox WHERE {ours} AND status IN {WAITING}", complaint_id)
    for r in waiting:
        rows.mark_cancelled(r["id"], now, by, "personal data erased")
    counts["outbox_cancelled"] = len(waiting)
    counts["outbox"] = conn.execute(
        f"UPDATE outbox SET subject = ?, raw = ?, last_error = NULL, "
        "rcpt = CASE WHEN audience = 'customer' THEN json_array(?) ELSE rcpt END, "
        f"rcpt_key = CASE WHEN audience = 'customer' THEN ? ELSE rcpt_key END WHERE {ours}",
        (privacy.ERASED, privacy.ERASED_BYTES, address, mailbox_key(address), complaint_id)).rowcount
    counts["notices"] = conn.execute("UPDATE notices SET context = '{}' WHERE complaint_id = ?",
                                     (complaint_id,)).rowcount
    conn.execute("UPDATE complaints SET customer_addr = ?, customer_key = ?, customer_name = '', subject = ?, "
                 "order_number = NULL, rating_text = NULL, cc_addrs = NULL, anonymised_at = COALESCE(anonymised_at, ?) "
                 "WHERE id = ?", (address, mailbox_key(address), privacy.ERASED, iso(now), complaint_id))
    if not store.one("SELECT 1 FROM events WHERE complaint_id = ? AND kind = 'anonymised'", complaint_id):
        store.add_event(complaint_id, now, by, "anonymised", **{k: v for k, v in counts.items() if v})
    return counts


def _erase_attachments(store: Store, message_ids_sql: str, params: tuple) -> tuple[int, int]:
    """The attachments of these messages lose name and file; a file no other attachment names goes."""
    conn = store.conn
    shas = [r[0] for r in conn.execute(f"SELECT DISTINCT sha256 FROM attachments WHERE sha256 IS NOT NULL "
                                       f"AND message_row IN ({message_ids_sql})", params)]
    n = conn.execute(f"UPDATE attachments SET filename = ?, sha256 = NULL, content = NULL, content_id = NULL "
                     f"WHERE message_row IN ({message_ids_sql}) AND (filename != ? OR sha256 IS NOT NULL "
                     f"OR content IS NOT NULL)", (privacy.ERASED, *params, privacy.ERASED)).rowcount
    gone = 0
    for sha in shas:
        gone += conn.execute("DELETE FROM files WHERE sha256 = ? AND NOT EXISTS "
                             "(SELECT 1 FROM attachments WHERE sha256 = ?)", (sha, sha)).rowcount
    return n, gone


def _scrub_events(store: Store, table: str, where: str, params: tuple) -> int:
    n = 0
    for r in store.all(f"SELECT id, detail FROM {table} WHERE {where}", *params):
        clean = privacy.scrub_detail(r["detail"])
        if clean != r["detail"]:
            store.conn.execute(f"UPDATE {table} SET detail = ? WHERE id = ?", (clean, r["id"]))
            n += 1
    return n


# --- the person's traces outside their own complaints ---------------------------------------
def erase_elsewhere(store: Store, address: str, now: datetime, by: str) -> dict:
    """What the person wrote on other complaints (a Cc'd party), their address in Cc lists, mail
    to them outside their complaints, quarantine and notices naming them. Idempotent."""
    key, low = mailbox_key(address), address.strip().lower()
    gone = f"erased@{privacy.ERASED_DOMAIN}"
    conn = store.conn
    theirs = "SELECT id FROM messages WHERE direction = 'in' AND from_addr IS NOT NULL AND mailbox_key(from_addr) = ?"
    conn.execute(f"DELETE FROM search_index WHERE rowid IN (SELECT id * 4 + 1 FROM ({theirs}) AS theirs)", (key,))
    counts = {}
    counts["attachments"], counts["files"] = _erase_attachments(store, theirs, (key,))
    counts["messages"] = conn.execute(
        f"UPDATE messages SET subject = ?, body = ?, reply_text = NULL, raw = NULL, to_addrs = NULL, "
        f"cc_addrs = NULL, from_addr = ? WHERE id IN ({theirs})", (privacy.ERASED, privacy.ERASED, gone, key)).rowcount
    conn.execute("UPDATE events SET actor = ? WHERE instr(actor, '@') > 0 AND mailbox_key(actor) = ?", (gone, key))
    counts["cc"] = 0
    for table, column in (("complaints", "cc_addrs"), ("messages", "cc_addrs"), ("messages", "to_addrs")):
        for r in store.all(f"SELECT id, {column} AS v FROM {table} WHERE instr(lower({column}), ?) > 0", low):
            new = privacy.drop_address(r["v"], address) if column == "cc_addrs" else \
                privacy.redact_text(r["v"], address, gone)
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (new, r["id"]))
            counts["cc"] += 1
    rows = OutboxRows(store)
    counts["outbox"] = 0
    for r in store.all("SELECT id, status, rcpt, raw FROM outbox WHERE rcpt_key = ? OR instr(lower(rcpt), ?) > 0 "
                       "OR instr(lower(CAST(raw AS TEXT)), ?) > 0", key, low, low):
        if r["status"] in WAITING:
            rows.mark_cancelled(r["id"], now, by, "personal data erased")
        only_them = [a for a in json.loads(r["rcpt"] or "[]") if mailbox_key(a) != key] == []
        raw = privacy.ERASED_BYTES if only_them else privacy.redact_bytes(r["raw"], address, gone)
        rcpt = json.dumps([gone]) if only_them else privacy.redact_text(r["rcpt"], address, gone)
        conn.execute("UPDATE outbox SET raw = ?, rcpt = ?, subject = CASE WHEN ? = 1 THEN ? ELSE subject END, "
                     "rcpt_key = CASE WHEN rcpt_key = ? THEN NULL ELSE rcpt_key END, last_error = NULL WHERE id = ?",
                     (raw, rcpt, only_them, privacy.ERASED, key, r["id"]))
        counts["outbox"] += 1
    counts["quarantine"] = conn.execute(
        "UPDATE quarantine SET sender = ?, subject = ? WHERE sender IS NOT NULL AND mailbox_key(sender) = ?",
        (gone, privacy.ERASED, key)).rowcount
    counts["notices"] = conn.execute(
        "UPDATE notices SET context = '{}', key = CASE WHEN instr(lower(key), ?) > 0 THEN ? ELSE key END "
        "WHERE instr(lower(context), ?) > 0 OR instr(lower(key), ?) > 0",
        (low, privacy.ERASED, low, low)).rowcount
    return counts


def record_erasure(store: Store, digest: str, now: datetime, by: str, reason: str, counts: dict) -> None:
    """The audit: who, when, why, how many rows; the address only as its keyed hash."""
    store.add_event(None, now, by, "privacy_erased", hash=digest, reason=reason, counts=counts)


# --- the bytes -------------------------------------------------------------------------------
def secure(store: Store, on: bool = True) -> None:
    """From now on this connection overwrites what it deletes (free pages, freed cells); `on=False`
    after a retention batch, so the daemon's own deletes stay cheap."""
    if store.kind == "sqlite":  # PostgreSQL has no such switch: scrub_file's VACUUM is what it has
        store.conn.execute(f"PRAGMA secure_delete = {'ON' if on else 'OFF'}")


def scrub_file(store: Store) -> dict:
    """After the erase's transactions: FTS5's segments merged (deleted tokens otherwise stay in
    older segments), the file rewritten (VACUUM) and the WAL checkpointed and truncated.

    secure_delete alone is not enough, measured: after 1,000 complaints anonymised with it, a
    fragment of an address stayed in an index page and one in an FTS5 content page (cells copied
    when b-tree pages are rebalanced). REINDEX cleared the index, not the table; VACUUM clears both
    (bench/bench.py --only privacy: NOTES-privacy.md). `busy` means a reader (the daemon mid-pass)
    kept the WAL: run the erase again to finish."""
    if store.kind == "postgresql":
        return _vacuum(store)
    with store.transaction():
        store.conn.execute("INSERT INTO search_index(search_index) VALUES ('optimize')")
    store.conn.execute("VACUUM")
    busy, log, done = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return {"busy": bool(busy), "wal_frames": log, "checkpointed": done}


# the tables an erasure or a retention batch rewrites
_ERASED_IN = ("complaints", "messages", "attachments", "files", "events", "outbox", "notices", "quarantine",
              "search_index", "seller_events", "sellers")


def _vacuum(store: Store) -> dict:
    """PostgreSQL: the erased values left every live row at once; the old row versions stay in the
    table files until VACUUM frees their space for new rows to overwrite (VACUUM FULL, which rewrites
    the files, locks each table out for the daemon: an admin's choice for a quiet hour, see
    docs/privacy.md). Outside any transaction, as VACUUM must be."""
    for table in _ERASED_IN:
        store.conn.execute(f"VACUUM {table}")
    return {"busy": False, "vacuumed": len(_ERASED_IN)}
