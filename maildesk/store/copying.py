"""`maildesk store copy`: an SQLite database into an empty PostgreSQL one (schema by PgStore).

Fast: PostgreSQL's COPY in binary, in batches of rows, one transaction per batch, so an
interruption (Ctrl-C, kill, PostgreSQL gone) loses at most the batch in flight. Resumable: a
table keyed by an integer carries on after the largest id already copied, one keyed by text skips
the keys already there; meta's 'copied_from' names the source, so a second run on the same target
carries on and a target holding another database's rows is refused. Verified: each table's row
count and a SHA-256 over its rows in key order, computed here in Python the same way for both
sides (bytes and memoryview alike, ints as ints, NULL apart from ''). search_index is not copied
(PostgreSQL's triggers rebuild it as rows arrive), nor meta (the schema's own).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

from psycopg import rows as pg_rows, sql

from maildesk.store.db import Store
from maildesk.store.postgres import PgStore

# Foreign keys first: sellers and files before what names them, complaints before their messages...
TABLES: list[tuple[str, str]] = [  # (table, its primary key)
    ("sellers", "id"), ("files", "sha256"), ("complaints", "id"), ("messages", "id"), ("attachments", "id"),
    ("events", "id"), ("outbox", "id"), ("processed", "message_id"), ("quarantine", "id"), ("state", "key"),
    ("seller_events", "id"), ("seller_strikes", "id"), ("outreach", "id"), ("seller_webhooks", "id"),
    ("notices", "id"), ("sent_elsewhere", "message_id"),
]
INTEGER_KEYED = frozenset(t for t, key in TABLES if key == "id") - {"sellers"}  # a seller's id is text
BATCH_ROWS = 5000
BATCH_BYTES = 32 * 1024 * 1024  # attachments' files can be large: a batch stops at this many bytes too
_BYTEA = 17  # PostgreSQL's type oid for bytea
_COPY_LOCK = 0x6D61_696C_6465_736C  # one copy at a time into a database (pg_try_advisory_lock)


class CopyRefused(Exception):
    """The target cannot take this copy (not empty, another source's copy, another copy running)."""


@dataclass
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


def source_identity(source: Store) -> str:
    """What names a source whatever its path: its first complaint (reference and first contact)."""
    first = source.one("SELECT ref, first_contact FROM complaints ORDER BY id LIMIT 1")
    return f"{first['ref']} {first['first_contact']}" if first else f"no complaints, {source.path.resolve()}"


def claim(target: PgStore, source: Store) -> bool:
    """Take the target for this source; True when it resumes an earlier copy of the same source.
    CopyRefused when another copy runs into it, it holds another database's copy, or rows of its own."""
    raw = target.conn.raw
    if not raw.execute("SELECT pg_try_advisory_lock(%s)", (_COPY_LOCK,)).fetchone()[0]:
        raise CopyRefused(f"another `maildesk store copy` is writing into {target.where}; wait for it to end")
    mine = source_identity(source)
    row = target.one("SELECT value FROM meta WHERE key = 'copied_from'")
    if row is not None:
        theirs = json.loads(row[0])
        if theirs["source"] != mine:
            raise CopyRefused(f"{target.where} holds a copy of another database ({theirs['path']}, first "
                              f"complaint {theirs['source']}); copy into an empty database")
        return True
    busy = [t for t, _ in TABLES if target.scalar(f"SELECT EXISTS (SELECT 1 FROM {t})")]
    if busy:
        raise CopyRefused(f"{target.where} is not empty (rows in {', '.join(busy)}) and was not filled by "
                          f"`maildesk store copy`; copy into an empty database")
    with target.transaction():
        target.conn.execute("INSERT INTO meta(key, value) VALUES ('copied_from', ?)",
                            (json.dumps({"path": str(source.path.resolve()), "source": mine}),))
    return False


def row_counts(store: Store) -> dict[str, int]:
    """Rows per copied table, on either side (the progress bar's total and starting point)."""
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t, _ in TABLES}


def columns(source: Store, target: PgStore, table: str) -> list[str]:
    """The table's columns, in SQLite's order; the two schemas must agree (both at the same version)."""
    names = [r["name"] for r in source.all(f"PRAGMA table_info({table})")]
    theirs = {r[0] for r in target.all("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_schema = current_schema() AND table_name = ?", table)}
    if set(names) != theirs:
        raise CopyRefused(f"table {table} differs between the two schemas: SQLite has {sorted(set(names) - theirs)}"
                          f", PostgreSQL {sorted(theirs - set(names))}")
    return names


def copy_table(source: Store, target: PgStore, table: str, key: str, advance: Callable[[int], None]) -> int:
    """The source rows the target lacks, in batches (one transaction each); the number copied."""
    names = columns(source, target, table)
    raw = target.conn.raw
    types = [raw.execute("SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
                         (table, name)).fetchone()[0] for name in names]
    copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    listed = ", ".join(names)
    if table in INTEGER_KEYED:
        after = target.scalar(f"SELECT max(id) FROM {table}") or 0
        rows = _tuples(source).execute(f"SELECT {listed} FROM {table} WHERE id > ? ORDER BY id", (after,))
    else:
        rows = _tuples(source).execute(f"SELECT {listed} FROM {table} ORDER BY {key}")
    at = names.index(key)
    copied = 0
    for batch in _batches(rows, sized=_BYTEA in types):
        if table not in INTEGER_KEYED:
            there = {r[0] for r in raw.execute(sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
                sql.Identifier(key), sql.Identifier(table), sql.Identifier(key)), ([r[at] for r in batch],))}
            batch = [r for r in batch if r[at] not in there]
            if not batch:
                continue
        with raw.transaction(), raw.cursor().copy(copy) as pipe:
            pipe.set_types(types)
            for row in batch:
                pipe.write_row(row)
        copied += len(batch)
        advance(len(batch))
    return copied


def _tuples(source: Store):
    """A cursor giving plain tuples: sqlite3.Row costs time over a whole database."""
    cur = source.conn.cursor()
    cur.row_factory = None
    return cur


def _batches(rows, sized: bool):
    """Lists of rows: BATCH_ROWS, or fewer as BATCH_BYTES for a table with bytes (mails, files)."""
    batch, size = [], 0
    for row in rows:
        batch.append(row)
        if sized:
            size += sum(len(v) for v in row if isinstance(v, (str, bytes)))
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def advance_sequences(target: PgStore) -> None:
    """Every identity past the largest id copied, so the next row written on PostgreSQL gets a new one."""
    with target.transaction():
        for table in sorted(INTEGER_KEYED):
            target.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")


def verify(source: Store, target: PgStore, table: str, key: str) -> TableCheck:
    names = columns(source, target, table)
    listed = ", ".join(names)
    src = _tuples(source).execute(f"SELECT {listed} FROM {table} ORDER BY {key}")
    raw = target.conn.raw
    with raw.transaction():
        cur = raw.cursor(name=f"verify_{table}", row_factory=pg_rows.tuple_row)
        cur.itersize = 2000
        cur.execute(f'SELECT {listed} FROM {table} ORDER BY {key} COLLATE "C"' if table not in INTEGER_KEYED
                    else f"SELECT {listed} FROM {table} ORDER BY {key}")
        target_rows, target_sum = checksum(cur)
        cur.close()
    source_count, source_sum = checksum(src)
    return TableCheck(table, source_count, target_rows, source_sum, target_sum)


def checksum(rows) -> tuple[int, str]:
    """(rows, sha256) over the rows as they come: each row's repr once its values are plain Python
    (str, int, bytes, None: what both drivers give for this schema; others are made so first)."""
    h, n = hashlib.sha256(), 0
    for row in rows:
        n += 1
        row = tuple(row)
        if not set(map(type, row)) <= _PLAIN:
            row = tuple(map(_plain, row))
        h.update(repr(row).encode("utf-8", "surrogatepass"))
    return n, h.hexdigest()


_PLAIN = {str, int, bytes, type(None)}


def _plain(value):
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def copy_all(source: Store, target: PgStore, advance: Callable[[int], None]) -> list[TableCheck]:
    """Every table copied (what an earlier run left is kept), the identities advanced, each table checked."""
    for table, key in TABLES:
        copy_table(source, target, table, key, advance)
    advance_sequences(target)
    return [verify(source, target, table, key) for table, key in TABLES]
