"""Migrations 1 to 8, the schema before issue 18 (store/migrations.py has the later ones and how
they run). A migration, once released, never changes."""
from __future__ import annotations

EARLY: list[str] = [
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
]
