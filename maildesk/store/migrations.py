"""The schema as numbered migrations: migration N brings a database from schema N-1 to N.

A migration, once released, never changes (a database that ran it keeps it); a change
of shape is a new number. `PRAGMA user_version` holds the number a database is at.
The partial indexes' WHEREs (migration 5) are spelled as the queries that use them spell
theirs (store/history.py): SQLite uses a partial index only for a query that says the same.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from maildesk.store.migrations_early import EARLY

MIGRATIONS: list[str] = [
    *EARLY,  # 1-8: store/migrations_early.py
    # 9 (issue 18, categories): each complaint has a category, suggested at intake from its subject and
    #    text (core/categories.py), changed by staff with #category; older complaints start as 'autre'
    """
    ALTER TABLE complaints ADD COLUMN category TEXT NOT NULL DEFAULT 'autre';
    CREATE INDEX complaints_category ON complaints(category, first_contact);
    """,
    # 10 (issue 18, merge): a complaint merged into another is closed with the survivor's reference;
    #    each message and event moved keeps the id of the complaint it came from (store/merges.py)
    """
    ALTER TABLE complaints ADD COLUMN merged_into TEXT;
    CREATE INDEX complaints_merged_into ON complaints(merged_into) WHERE merged_into IS NOT NULL;
    ALTER TABLE messages ADD COLUMN merged_from INTEGER REFERENCES complaints(id);
    ALTER TABLE events ADD COLUMN merged_from INTEGER REFERENCES complaints(id);
    """,
    # 11 (issue 18, search): one FTS5 table over subjects, customer names, inbound bodies, staff notes
    #    and seller names, accent-insensitive ("recu" finds "reçu"), kept by triggers; rowid = the source
    #    row's id * 4 + its kind (0 complaint, 1 message, 2 note, 3 seller) so each is replaced by rowid.
    #    Only inbound mail is indexed: our own templates would make every complaint match "reçu"
    """
    CREATE VIRTUAL TABLE search_index USING fts5(complaint_id UNINDEXED, source UNINDEXED, body,
        tokenize="unicode61 remove_diacritics 2");
    CREATE TRIGGER search_complaint_new AFTER INSERT ON complaints BEGIN
        INSERT INTO search_index(rowid, complaint_id, source, body)
            VALUES (new.id * 4, new.id, 'complaint', new.subject || ' ' || new.customer_name || ' ' || new.customer_addr);
        INSERT INTO search_index(rowid, complaint_id, source, body)
            SELECT new.id * 4 + 3, new.id, 'seller', s.shop_name FROM sellers s WHERE s.id = new.seller_id;
    END;
    CREATE TRIGGER search_complaint_changed AFTER UPDATE OF subject, customer_name, customer_addr, seller_id
        ON complaints BEGIN
        DELETE FROM search_index WHERE rowid IN (old.id * 4, old.id * 4 + 3);
        INSERT INTO search_index(rowid, complaint_id, source, body)
            VALUES (new.id * 4, new.id, 'complaint', new.subject || ' ' || new.customer_name || ' ' || new.customer_addr);
        INSERT INTO search_index(rowid, complaint_id, source, body)
            SELECT new.id * 4 + 3, new.id, 'seller', s.shop_name FROM sellers s WHERE s.id = new.seller_id;
    END;
    CREATE TRIGGER search_complaint_gone AFTER DELETE ON complaints BEGIN
        DELETE FROM search_index WHERE rowid IN (old.id * 4, old.id * 4 + 3);
    END;
    CREATE TRIGGER search_message_new AFTER INSERT ON messages
        WHEN new.complaint_id IS NOT NULL AND new.direction = 'in' AND new.kind NOT IN ('auto', 'bounce') BEGIN
        INSERT INTO search_index(rowid, complaint_id, source, body)
            VALUES (new.id * 4 + 1, new.complaint_id, 'message',
                    coalesce(new.subject, '') || ' ' || coalesce(nullif(new.reply_text, ''), new.body, ''));
    END;
    CREATE TRIGGER search_message_moved AFTER UPDATE OF complaint_id ON messages BEGIN
        UPDATE search_index SET complaint_id = new.complaint_id WHERE rowid = new.id * 4 + 1;
    END;
    CREATE TRIGGER search_message_gone AFTER DELETE ON messages BEGIN
        DELETE FROM search_index WHERE rowid = old.id * 4 + 1;
    END;
    CREATE TRIGGER search_note_new AFTER INSERT ON events
        WHEN new.kind = 'note' AND new.complaint_id IS NOT NULL BEGIN
        INSERT INTO search_index(rowid, complaint_id, source, body)
            VALUES (new.id * 4 + 2, new.complaint_id, 'note', coalesce(json_extract(new.detail, '$.text'), ''));
    END;
    CREATE TRIGGER search_note_moved AFTER UPDATE OF complaint_id ON events WHEN new.kind = 'note' BEGIN
        UPDATE search_index SET complaint_id = new.complaint_id WHERE rowid = new.id * 4 + 2;
    END;
    CREATE TRIGGER search_seller_renamed AFTER UPDATE OF shop_name ON sellers BEGIN
        UPDATE search_index SET body = new.shop_name
            WHERE rowid IN (SELECT id * 4 + 3 FROM complaints WHERE seller_id = new.id);
    END;
    INSERT INTO search_index(rowid, complaint_id, source, body)
        SELECT id * 4, id, 'complaint', subject || ' ' || customer_name || ' ' || customer_addr FROM complaints;
    INSERT INTO search_index(rowid, complaint_id, source, body)
        SELECT c.id * 4 + 3, c.id, 'seller', s.shop_name FROM complaints c JOIN sellers s ON s.id = c.seller_id;
    INSERT INTO search_index(rowid, complaint_id, source, body)
        SELECT id * 4 + 1, complaint_id, 'message', coalesce(subject, '') || ' ' || coalesce(nullif(reply_text, ''), body, '')
        FROM messages WHERE complaint_id IS NOT NULL AND direction = 'in' AND kind NOT IN ('auto', 'bounce');
    INSERT INTO search_index(rowid, complaint_id, source, body)
        SELECT id * 4 + 2, complaint_id, 'note', coalesce(json_extract(detail, '$.text'), '')
        FROM events WHERE kind = 'note' AND complaint_id IS NOT NULL;
    """,
    # 12: attachments, end to end (issue 16). A file's bytes are kept once, by SHA-256, however many
    # mails carry it; an attachment row names its file. Inline images keep their Content-ID (a
    # signature's logo is known by it), a damaged file says what is wrong. The addresses a customer
    # put in Cc are kept on the complaint (customer-facing mail copies them), and each outgoing mail
    # records who it was copied to.
    """
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        content BLOB NOT NULL
    );
    ALTER TABLE attachments ADD COLUMN sha256 TEXT REFERENCES files(sha256);
    ALTER TABLE attachments ADD COLUMN content_id TEXT;
    ALTER TABLE attachments ADD COLUMN inline INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attachments ADD COLUMN problem TEXT;
    CREATE INDEX attachments_sha256 ON attachments(sha256);
    INSERT OR IGNORE INTO files(sha256, size, content)
        SELECT sha256(content), length(content), content FROM attachments WHERE content IS NOT NULL;
    UPDATE attachments SET sha256 = sha256(content), content = NULL WHERE content IS NOT NULL;
    ALTER TABLE complaints ADD COLUMN cc_addrs TEXT;
    ALTER TABLE messages ADD COLUMN cc_addrs TEXT;
    """,
    "ALTER TABLE attachments ADD COLUMN not_kept TEXT",  # 13 (issue 16): bytes not kept: 'over_limit' | 'on_server'
    # 14 (issue 17, retention): when a complaint or a seller was anonymised (the erase or the clock); the sweep
    #    finds what waits by settling time through a partial index that leaves the anonymised ones out
    #    (store/retention.py spells the same WHERE). Complaints erased before this number are marked.
    """
    ALTER TABLE complaints ADD COLUMN anonymised_at TEXT;
    ALTER TABLE sellers ADD COLUMN anonymised_at TEXT;
    UPDATE complaints SET anonymised_at = COALESCE((SELECT min(e.at) FROM events e WHERE e.complaint_id = complaints.id
        AND e.kind = 'anonymised'), first_contact) WHERE customer_addr LIKE '%@erased.invalid';
    CREATE INDEX complaints_retention ON complaints(COALESCE(closed_at, resolved_at, first_contact))
        WHERE anonymised_at IS NULL AND status IN ('closed', 'merged', 'imported');
    """]

SCHEMA_VERSION = len(MIGRATIONS)


def steps(version: int) -> list[tuple[int, list[str]]]:
    """The migrations a database at schema `version` still needs: (number, its statements)."""
    return [(number, _statements(script))
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1)]


def _statements(script: str) -> list[str]:
    """A script's statements; a trigger's body (BEGIN ... END) holds `;` of its own."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().removesuffix(";"))
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().removesuffix(";"))
    return statements


def schema_problem(found: int, path: Path) -> str | None:
    """What to do when the database at `path` has schema `found`, or None when it matches the code."""
    if found == SCHEMA_VERSION:
        return None
    if found < SCHEMA_VERSION:
        return (f"database {path} has schema {found}, this maildesk needs {SCHEMA_VERSION}: "
                f"stop the daemon, then run `maildesk migrate` (it takes a backup first)")
    return (f"database {path} has schema {found}, newer than this maildesk knows ({SCHEMA_VERSION}): "
            f"install the newer maildesk again, or restore the backup `maildesk migrate` took before upgrading")
