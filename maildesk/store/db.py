"""The SQLite store: schema, numbered migrations and named queries.

Times are stored as ISO-8601 UTC strings of one fixed shape
(`2026-11-24T08:12:03+00:00`) so that string order is time order and the
indexes on due times work. The policy lives elsewhere: this module only
knows how to read and write rows.
"""
from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import sqlite_utils

from maildesk.core.addresses import mailbox_key

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
]


# Tables keyed by `id INTEGER PRIMARY KEY` that Store.insert/update write with plain SQL when
# every value is a plain SQLite value; anything else goes through sqlite-utils as before.
_PLAIN_TABLES = frozenset({"complaints", "messages", "attachments", "events", "outbox", "notices"})
# plain-SQL inserts also for `processed` (one row per message; keyed by message_id, nobody uses the
# returned rowid)
_PLAIN_INSERTS = _PLAIN_TABLES | {"processed"}
_PLAIN = frozenset({str, int, float, bytes, type(None)})
_INSERTS: dict[tuple, str] = {}


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(Exception):
    """The database's schema is not the one this code was written for: one line saying what to run."""


class DatabaseReadOnly(Exception):
    """maildesk cannot write its database (file or folder rights): a fatal, one-line error."""


def schema_problem(found: int, path: Path) -> str | None:
    """What to do when the database at `path` has schema `found`, or None when it matches the code."""
    if found == SCHEMA_VERSION:
        return None
    if found < SCHEMA_VERSION:
        return (f"database {path} has schema {found}, this maildesk needs {SCHEMA_VERSION}: "
                f"stop the daemon, then run `maildesk migrate` (it takes a backup first)")
    return (f"database {path} has schema {found}, newer than this maildesk knows ({SCHEMA_VERSION}): "
            f"install the newer maildesk again, or restore the backup `maildesk migrate` took before upgrading")


def check_writable(path: Path) -> None:
    """Raise DatabaseReadOnly when this process could not write the database (or its WAL files,
    or create them): better one clear line at start than a daemon retrying for ever."""
    folder = path.parent
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            raise DatabaseReadOnly(f"database file {p} is not writable by this user "
                                   f"({_user()}): {_owner_hint(path)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseReadOnly(f"folder {folder} is not writable by this user ({_user()}); SQLite needs "
                               f"to create its journal files there: {_owner_hint(path)}")


def _user() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _owner_hint(path: Path) -> str:
    owner = file_owner(path if path.exists() else path.parent)
    return f"run maildesk as {owner}, or `chown -R {owner}: {path.parent}`"


def file_owner(path: Path) -> str:
    import pwd
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Store:
    """One SQLite database; `transaction()` is the only way to write.

    `readonly=True` (the read commands) opens it without any write, not even the
    WAL switch, so a monitoring user with read rights can use it. A new, empty
    database is created at the current schema; an existing one must already be
    at it (`maildesk migrate` is the only thing that changes a schema:
    `migrate=True`)."""

    def __init__(self, path: Path | str, *, readonly: bool = False, migrate: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise SchemaError(f"no database at {self.path} yet: the daemon creates it on its first start "
                                  f"(or run `maildesk migrate`)")
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                   isolation_level=None, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_writable(self.path)
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.create_function("mailbox_key", 1, mailbox_key, deterministic=True)  # migration 7
        self.conn = conn
        try:
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self.version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as e:
            conn.close()
            if "readonly" in str(e) or "read-only" in str(e):
                raise DatabaseReadOnly(f"database {self.path} is read-only for this user ({_user()}): "
                                       f"{_owner_hint(self.path)}") from None
            raise SchemaError(f"database {self.path} cannot be opened: {e}") from None
        self.db = sqlite_utils.Database(conn)
        self._depth = 0
        empty = self.version == 0 and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
        if migrate or (empty and not readonly):
            self.migrate()
        elif problem := schema_problem(self.version, self.path):
            conn.close()
            raise SchemaError(problem)

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[int]:
        """Bring the schema to SCHEMA_VERSION; the numbers applied. Refuses a newer schema."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.conn.close()
            raise SchemaError(schema_problem(version, self.path))
        applied = []
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number}")
            applied.append(number)
        self.version = SCHEMA_VERSION
        return applied

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls become savepoints so one
        bad message can roll back alone inside a batch. IMMEDIATE (not
        sqlite-utils' plain BEGIN) so a CLI write beside the daemon waits
        for the lock instead of failing on upgrade.

        `durable=False` (outermost only) commits without waiting for the disk
        (synchronous=NORMAL): the commit survives the process being killed, not
        a power cut until the next durable commit writes it out with the rest."""
        if self._depth == 0:
            if not durable:
                self.conn.execute("PRAGMA synchronous=NORMAL")
                try:
                    with self.transaction():
                        yield
                finally:
                    self.conn.execute("PRAGMA synchronous=FULL")
                return
            self.conn.execute("BEGIN IMMEDIATE")
            name = None
        else:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if not self.conn.in_transaction:
                raise  # SQLite rolled back by itself (disk full, I/O error): keep the real error
            if name:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            else:
                self.conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if name:
            self.conn.execute(f"RELEASE {name}")
        else:
            self.conn.execute("COMMIT")

    # --- generic helpers -------------------------------------------------
    def one(self, sql: str, *params) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, *params):
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def insert(self, table: str, values: dict) -> int:
        if table in _PLAIN_INSERTS and all(type(v) in _PLAIN for v in values.values()):
            # the hot path (8 inserts per new complaint): plain SQL, 7x cheaper than sqlite-utils
            sql = _INSERTS.get((table, tuple(values)))
            if sql is None:
                sql = _INSERTS[(table, tuple(values))] = (
                    f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})")
            return self.conn.execute(sql, tuple(values.values())).lastrowid
        # sqlite-utils nests inside our open transaction as a savepoint
        return self.db[table].insert(values).last_pk

    def update(self, table: str, row_id: int, values: dict) -> None:
        if not values:
            return
        if table in _PLAIN_TABLES and all(type(v) in _PLAIN for v in values.values()):
            sets = ", ".join(f"{k} = ?" for k in values)
            cur = self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values.values(), row_id))
            if cur.rowcount == 0:
                raise sqlite_utils.db.NotFoundError(f"{table} {row_id}")
            return
        self.db[table].update(row_id, values)

    # --- state ---------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM state WHERE key = ?", key)

    def set_state(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO state(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # --- complaints ----------------------------------------------------------
    def complaint(self, ref: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM complaints WHERE ref = ?", ref.upper())

    def complaint_by_id(self, complaint_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM complaints WHERE id = ?", complaint_id)

    def complaints_for_message_ids(self, message_ids) -> list[sqlite3.Row]:
        ids = list(dict.fromkeys(message_ids))[-50:]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return self.all(f"SELECT DISTINCT c.* FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                        f"WHERE m.message_id IN ({marks})", *ids)

    def due_complaints(self, now: datetime, limit: int = 1000) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM complaints WHERE next_due IS NOT NULL AND next_due <= ? "
                        "ORDER BY next_due LIMIT ?", iso(now), limit)

    def seen(self, message_id: str) -> bool:
        return self.one("SELECT 1 FROM processed WHERE message_id = ?", message_id) is not None

    def add_event(self, complaint_id: int | None, at: datetime, actor: str, kind: str, /, **detail) -> None:
        self.insert("events", {"complaint_id": complaint_id, "at": iso(at), "actor": actor,
                               "kind": kind, "detail": json.dumps(detail, ensure_ascii=False, default=str)})

    def timeline(self, complaint_id: int) -> list[sqlite3.Row]:
        return self.all("SELECT * FROM events WHERE complaint_id = ? ORDER BY at, id", complaint_id)

    def messages(self, complaint_id: int) -> list[sqlite3.Row]:
        return self.all("SELECT id, message_id, direction, kind, at, from_addr, to_addrs, subject, body, reply_text "
                        "FROM messages WHERE complaint_id = ? ORDER BY at, id", complaint_id)

    def recent_auto_replies(self, address: str, since: datetime) -> int:
        """Automatic mail queued to one mailbox (any spelling of it) since then (staff-written
        relays do not count)."""
        return self.scalar("SELECT count(*) FROM outbox WHERE rcpt_key = ? AND audience = 'customer' "
                           "AND kind NOT IN ('relay', 'ask') AND created_at >= ?", mailbox_key(address), iso(since))

    def opened_since(self, address: str, since: datetime) -> int:
        """Complaints one mailbox (any spelling of it) opened since then."""
        return self.scalar("SELECT count(*) FROM complaints WHERE customer_key = ? AND opened_at >= ?",
                           mailbox_key(address), iso(since))

    def complaints_we_wrote_in(self, message_ids) -> list[sqlite3.Row]:
        """Complaints of the mail WE sent under these Message-IDs (a bounce or an answer to our mail)."""
        ids = list(dict.fromkeys(message_ids))[-50:]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return self.all(f"SELECT DISTINCT c.* FROM outbox o JOIN complaints c ON c.id = o.complaint_id "
                        f"WHERE o.message_id IN ({marks})", *ids)
