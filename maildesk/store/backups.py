"""Whole-database copies for `maildesk backup`, `restore` and `migrate`: SQLite's online
backup (a consistent copy, WAL included, also while the daemon writes) between files,
opened read-only where only read. These work on paths, not on an open Store: the
daemon may hold the database, or there may be none yet.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from maildesk.store.db import SchemaError, iso


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file records about itself (in its `state` table, keys `backup:*`)."""
    taken_at: str
    schema: int
    newest_message_id: str | None
    newest_at: str | None


@dataclass(frozen=True)
class BackupFacts:
    """What `restore` needs to know of a backup before putting it back."""
    schema: int
    taken_at: str | None


def _read(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def _version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def take_backup(db_path: Path, dest: Path, taken_at: datetime) -> BackupInfo:
    """Copy the database at `db_path` to `dest` (0600, written aside then renamed into place)."""
    src = _read(db_path)
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    dst = sqlite3.connect(str(part))
    try:
        os.chmod(part, 0o600)  # customers' mail
        src.backup(dst)  # one step: a single read transaction, so a consistent copy
        dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        version = _version(dst)
        if version == 0:
            raise SchemaError(f"{db_path} holds no maildesk database yet: nothing to back up")
        newest = dst.execute("SELECT message_id, at FROM processed ORDER BY at DESC, rowid DESC LIMIT 1").fetchone()
        info = BackupInfo(taken_at=iso(taken_at), schema=version, newest_message_id=newest[0] if newest else None,
                          newest_at=newest[1] if newest else None)
        dst.executemany("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)",
                        [(f"backup:{k}", str(v)) for k, v in vars(info).items() if v is not None])
        dst.commit()
    except BaseException:
        dst.close()
        part.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    dst.close()
    os.replace(part, dest)
    return info


def read_backup(path: Path) -> BackupFacts:
    """Its schema and when it was taken; raises StoreError when `path` is no readable,
    intact database (quick_check)."""
    src = _read(path)
    try:
        found = _version(src)
        taken = src.execute("SELECT value FROM state WHERE key = 'backup:taken_at'").fetchone()
        src.execute("PRAGMA quick_check").fetchone()
    finally:
        src.close()
    return BackupFacts(schema=found, taken_at=taken[0] if taken else None)


def restore_backup(source: Path, db: Path, state: dict[str, str]) -> None:
    """Put the backup at `source` in place of the database at `db` (daemon stopped), with
    these `state` rows set (the note the next start reads)."""
    src = _read(source)
    try:
        dst = sqlite3.connect(str(db), timeout=30)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
            dst.executemany("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", list(state.items()))
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()


def schema_of(path: Path) -> int:
    """The schema number of the database file at `path`, read without writing; 0 when there is none."""
    if not path.exists():
        return 0
    conn = _read(path)
    try:
        return _version(conn)
    finally:
        conn.close()
