"""The schema as numbered migrations: migration N brings a database from schema N-1 to N.

A migration, once released, never changes (a database that ran it keeps it); a change
of shape is a new number. `PRAGMA user_version` holds the number a database is at.
The partial indexes' WHEREs (migration 5) are spelled as the queries that use them spell
theirs (store/history.py): SQLite uses a partial index only for a query that says the same.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

MIGRATIONS: list[str] = [
    # 1: the walking skeleton
    """
    CREATE TABLE complaints (
        id INTEGER PRIMARY KEY,
        ref TEXT NOT NULL UNIQUE,
        customer_addr TEXT NOT NULL,
        customer_name TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL DEFAULT '',
        lang TEXT NOT NULL DEFAULT 'fr',
        order_number TEXT,
        seller_id TEXT,
        level INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'open',
        owner TEXT,
        first_contact TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        acked_at TEXT,
        first_staff_answer_at TEXT,
        resolved_at TEXT,
        closed_at TEXT,
        last_customer_update_at TEXT,
        findings_reminded_at TEXT,
        target_warned_at TEXT,
        target_missed_at TEXT,
        satisfaction_asked_at TEXT,
        satisfaction_reminded_at TEXT,
        rating INTEGER,
        rating_text TEXT,
        rated_at TEXT,
        next_due TEXT
    );
    CREATE INDEX complaints_next_due ON complaints(next_due) WHERE next_due IS NOT NULL;
    CREATE INDEX complaints_customer ON complaints(customer_addr);
    CREATE INDEX complaints_status_level ON complaints(status, level);

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        complaint_id INTEGER REFERENCES complaints(id),
        message_id TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        from_addr TEXT,
        to_addrs TEXT,
        subject TEXT,
        body TEXT,
        reply_text TEXT,
        raw BLOB
    );
    CREATE INDEX messages_complaint ON messages(complaint_id, at);

    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_row INTEGER NOT NULL REFERENCES messages(id),
        filename TEXT NOT NULL,
        content_type TEXT,
        size INTEGER NOT NULL,
        content BLOB
    );
    CREATE INDEX attachments_message ON attachments(message_row);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        complaint_id INTEGER REFERENCES complaints(id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_complaint ON events(complaint_id, at);
    CREATE INDEX events_kind ON events(kind, at);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        complaint_id INTEGER REFERENCES complaints(id),
        kind TEXT NOT NULL,
        audience TEXT NOT NULL,
        routine INTEGER NOT NULL DEFAULT 0,
        mail_from TEXT NOT NULL,
        rcpt TEXT NOT NULL,
        subject TEXT NOT NULL,
        raw BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
    CREATE INDEX outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;

    CREATE TABLE processed (
        message_id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        ref TEXT
    );

    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        folder TEXT NOT NULL,
        message_id TEXT,
        sha256 TEXT NOT NULL UNIQUE,
        sender TEXT,
        subject TEXT,
        size INTEGER NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'held'
    );

    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
    """,
    # 2: the flood cap (recent_auto_replies) looked at every outbox row for every new complaint
    """
    CREATE INDEX outbox_rcpt ON outbox(rcpt, created_at);
    """,
    # sellers (issue 5): registry and history, outreach with due times, strikes, decision web hooks
    """
    CREATE TABLE sellers (
        id TEXT PRIMARY KEY,
        shop_name TEXT NOT NULL,
        address TEXT NOT NULL UNIQUE,
        phone TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        status_reason TEXT,
        status_by TEXT,
        status_at TEXT,
        strikes_cleared_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sellers_status ON sellers(status);

    CREATE TABLE seller_events (
        id INTEGER PRIMARY KEY,
        seller_id TEXT NOT NULL REFERENCES sellers(id),
        complaint_id INTEGER REFERENCES complaints(id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX seller_events_seller ON seller_events(seller_id, at);

    CREATE TABLE seller_strikes (
        id INTEGER PRIMARY KEY,
        seller_id TEXT NOT NULL REFERENCES sellers(id),
        complaint_id INTEGER REFERENCES complaints(id),
        outreach_id INTEGER,
        kind TEXT NOT NULL,
        reason TEXT,
        actor TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX seller_strikes_seller ON seller_strikes(seller_id, at);

    CREATE TABLE outreach (
        id INTEGER PRIMARY KEY,
        complaint_id INTEGER NOT NULL REFERENCES complaints(id),
        seller_id TEXT NOT NULL REFERENCES sellers(id),
        status TEXT NOT NULL DEFAULT 'waiting',
        actor TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        remind_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        reminded_at TEXT,
        answered_at TEXT,
        failed_at TEXT,
        failed_reason TEXT,
        next_due TEXT
    );
    CREATE INDEX outreach_next_due ON outreach(next_due) WHERE next_due IS NOT NULL;
    CREATE INDEX outreach_complaint ON outreach(complaint_id, seller_id, status);

    CREATE TABLE seller_webhooks (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL UNIQUE,
        seller_id TEXT NOT NULL REFERENCES sellers(id),
        event TEXT NOT NULL,
        url TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX seller_webhooks_pending ON seller_webhooks(status, next_attempt_at);

    CREATE INDEX complaints_seller ON complaints(seller_id);
    """,
    # 4: an outbox row is claimed before it is sent (two flushers never send it twice);
    #    the level the clock escalated to, so a staff `#level 1` is not undone by the clock
    """
    ALTER TABLE outbox ADD COLUMN lease_until TEXT;
    ALTER TABLE outbox ADD COLUMN lease_owner INTEGER;
    ALTER TABLE complaints ADD COLUMN auto_level INTEGER NOT NULL DEFAULT 1;
    """,
    # 5: the daily digest reads only its window: complaints by first contact (and reference, the order
    #    it lists them in), acknowledgement, rating and settling time; each complaint's state changes.
    #    The partial indexes' WHEREs are repeated term for term in maildesk/history.py (SETTLED, CHANGES):
    #    SQLite uses a partial index only for a query that says the same
    """
    CREATE INDEX complaints_first_contact ON complaints(first_contact, ref);
    CREATE INDEX complaints_acked ON complaints(acked_at) WHERE acked_at IS NOT NULL;
    CREATE INDEX complaints_rated ON complaints(rated_at) WHERE rated_at IS NOT NULL;
    CREATE INDEX complaints_settled ON complaints(COALESCE(closed_at, resolved_at, first_contact))
        WHERE status NOT IN ('open', 'waiting_customer');
    CREATE INDEX events_changes ON events(complaint_id, at)
        WHERE kind IN ('resolved', 'closed', 'reopened', 'escalated', 'level_lowered');
    """,
    # 6: the outbox's bulkheads and duplicate window: when a send was handed to the server and not yet
    #    settled (in_flight_at: after a crash the Sent folder is asked before sending again), how many
    #    attempts ended in an error nobody expected (bounded), and who cancelled a row and why
    """
    ALTER TABLE outbox ADD COLUMN in_flight_at TEXT;
    ALTER TABLE outbox ADD COLUMN unexpected INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN cancelled_at TEXT;
    ALTER TABLE outbox ADD COLUMN cancelled_by TEXT;
    ALTER TABLE outbox ADD COLUMN cancel_reason TEXT;
    """,
    # 7: the flood caps count by mailbox (addresses.mailbox_key: +tags and Gmail dots folded), not by
    #    spelling; notices: admin alerts and flood notifications coalesced to one mail an hour (notices.py)
    """
    ALTER TABLE complaints ADD COLUMN customer_key TEXT;
    UPDATE complaints SET customer_key = mailbox_key(customer_addr);
    CREATE INDEX complaints_customer_key ON complaints(customer_key, opened_at);
    ALTER TABLE outbox ADD COLUMN rcpt_key TEXT;
    UPDATE outbox SET rcpt_key = mailbox_key(json_extract(rcpt, '$[0]'))
        WHERE audience = 'customer' AND json_array_length(rcpt) = 1;
    CREATE INDEX outbox_rcpt_key ON outbox(rcpt_key, created_at) WHERE rcpt_key IS NOT NULL;
    CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        at TEXT NOT NULL,
        complaint_id INTEGER REFERENCES complaints(id),
        context TEXT NOT NULL DEFAULT '{}',
        mailed_at TEXT,
        message_id TEXT
    );
    CREATE INDEX notices_held ON notices(kind, key, at) WHERE mailed_at IS NULL;
    CREATE INDEX notices_mailed ON notices(kind, key, mailed_at) WHERE mailed_at IS NOT NULL;
    """,
    # 8: Gmail's daily limit counts recipients, also of what staff send from the account itself:
    #    each such mail seen in the Sent folder (shared-mailbox mode), by Message-ID, counted once
    """
    CREATE TABLE sent_elsewhere (
        message_id TEXT PRIMARY KEY,
        sent_at TEXT NOT NULL,
        recipients INTEGER NOT NULL
    );
    CREATE INDEX sent_elsewhere_at ON sent_elsewhere(sent_at);
    """,
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
    "ALTER TABLE attachments ADD COLUMN not_kept TEXT"]  # 13 (issue 16): bytes not kept: 'over_limit' | 'on_server'

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
