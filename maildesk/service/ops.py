"""`maildesk migrate`, `backup FILE`, `restore FILE`, and the recovery after a restore.

A backup is SQLite's online backup (a consistent copy, WAL included, also
while the daemon writes), written as one self-contained file that records
when it was taken, its schema version and the newest Message-ID it had
handled. `restore` puts one back (daemon stopped; the database it replaces
is kept aside) and leaves a note for the next start: the daemon then reads
the processed folder again from shortly before the backup and handles every
message the restored database does not know. Known Message-IDs are skipped,
so this is safe; the re-handled mail sends nothing (it was answered the
first time), and a complaint opened again takes back the reference its
later mail carries, so customers' replies still find it.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from maildesk.core import refs, timefmt
from maildesk.adapters.imap_types import MailboxError
from maildesk.clock import utcnow
from maildesk.lock import AlreadyRunning, alone
from maildesk.logs import event as log_event
from maildesk.store import backups, maintenance
from maildesk.store.db import SchemaError, Store, StoreError, StoreUnreachable, from_iso, iso, safe_url
from maildesk.store.opening import open_store
from maildesk.store.migrations import SCHEMA_VERSION, schema_problem

RECOVER_KEY = "recover_since"  # state: set by restore, cleared once the processed folder was read again
MARGIN = timedelta(days=2)  # mail waiting in the inbox when the backup was taken may have arrived earlier


def add_parsers(sub) -> None:
    sub.add_parser("migrate", help="bring the database schema up to this version (takes a backup first)")
    bk = sub.add_parser("backup", help="a consistent copy of the database, also while the daemon runs")
    bk.add_argument("file", help="where to write it (must not exist)")
    rs = sub.add_parser("restore", help="put a backup back (daemon stopped); mail handled since is read again "
                                        "from the processed folder on the next start")
    rs.add_argument("file", help="a file written by `maildesk backup`")


def take_backup(db_path: Path, dest: Path) -> backups.BackupInfo:
    return backups.take_backup(db_path, dest, utcnow())


def _on_postgres(cfg, command: str) -> int | None:
    """backup, restore and migrate work on the SQLite file; on PostgreSQL its own tools do the first
    two, and migrate runs in one transaction under the store's lock. None: the store is SQLite."""
    if not cfg.storage.url:
        return None
    if command in ("backup", "restore"):
        print(f"maildesk: the store is PostgreSQL ({safe_url(cfg.storage.url)}): use pg_dump -Fc to back it up "
              f"and pg_restore to restore it (or the database provider's backups)", file=sys.stderr)
        return 1
    try:
        store = open_store(cfg, readonly=True)
        found = store.version
        store.close()
    except SchemaError:  # older or newer: said again below by the migration itself
        found = None
    except (StoreError, StoreUnreachable) as e:
        print(f"maildesk: migrate failed: {e}", file=sys.stderr)
        return 1
    if found == SCHEMA_VERSION:
        print(f"database {safe_url(cfg.storage.url)} is at schema {found}, as this maildesk needs; nothing to do")
        return 0
    try:
        open_store(cfg, migrate=True).close()
    except (StoreError, SchemaError, StoreUnreachable) as e:
        print(f"maildesk: migrate failed: {e}", file=sys.stderr)
        return 2 if isinstance(e, SchemaError) else 1
    print(f"database {safe_url(cfg.storage.url)} migrated to schema {SCHEMA_VERSION}")
    return 0


def backup_command(cfg, args) -> int:
    if (done := _on_postgres(cfg, "backup")) is not None:
        return done
    dest = Path(args.file)
    if dest.exists():
        print(f"maildesk: {dest} exists; choose a new file name", file=sys.stderr)
        return 1
    if not cfg.database_path.exists():
        print(f"maildesk: no database at {cfg.database_path}: nothing to back up", file=sys.stderr)
        return 1
    try:
        info = take_backup(cfg.database_path, dest)
    except (StoreError, OSError, SchemaError) as e:
        print(f"maildesk: backup failed: {e}", file=sys.stderr)
        return 1
    print(f"backup written to {dest}: schema {info.schema}, taken {timefmt.local(info.taken_at, cfg.tz)}, "
          f"newest handled mail {info.newest_message_id or '(none)'}")
    return 0


def restore_command(cfg, args) -> int:
    if (done := _on_postgres(cfg, "restore")) is not None:
        return done
    source, db = Path(args.file), cfg.database_path
    try:
        facts = backups.read_backup(source)
    except StoreError as e:
        print(f"maildesk: {source} is not a maildesk backup: {e}", file=sys.stderr)
        return 1
    found = facts.schema
    if found > SCHEMA_VERSION:
        print(f"maildesk: {schema_problem(found, source)}", file=sys.stderr)
        return 2
    try:
        with alone(db, "restoring"):
            aside = None
            if db.exists():  # never destroy what we replace
                aside = db.with_name(f"{db.name}.before-restore-{utcnow():%Y%m%dT%H%M%S}")
                take_backup(db, aside)
            since = facts.taken_at or iso(utcnow() - timedelta(days=7))
            backups.restore_backup(source, db, {RECOVER_KEY: since})
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except (StoreError, OSError, SchemaError) as e:
        print(f"maildesk: restore failed: {e}", file=sys.stderr)
        return 1
    print(f"restored {source} (schema {found}, taken {timefmt.local(since, cfg.tz)}) to {db}"
          + (f"; the database it replaced is kept as {aside}" if aside else "")
          + ("\nnext: `maildesk migrate`, then start the daemon" if found < SCHEMA_VERSION else
             "\nnext: start the daemon; it reads the processed folder again for mail handled after the backup"))
    return 0


def migrate_command(cfg, args) -> int:
    """The only command that changes the schema; takes a backup first, holds the daemon's lock."""
    if (done := _on_postgres(cfg, "migrate")) is not None:
        return done
    db = cfg.database_path
    try:
        with alone(db, "migrating"):
            found = backups.schema_of(db)
            if found > SCHEMA_VERSION:
                print(f"maildesk: {schema_problem(found, db)}", file=sys.stderr)
                return 2
            if found == SCHEMA_VERSION:
                print(f"database {db} is at schema {found}, as this maildesk needs; nothing to do")
                return 0
            saved = None
            if found:
                saved = db.with_name(f"{db.name}.schema{found}-{utcnow():%Y%m%dT%H%M%S}.bak")
                take_backup(db, saved)
            Store(db, migrate=True).close()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except (StoreError, OSError, SchemaError) as e:
        print(f"maildesk: migrate failed: {e}", file=sys.stderr)
        return 1
    print(f"database {db} migrated from schema {found} to {SCHEMA_VERSION}"
          + (f"; backup of the old one: {saved} (restore it with the old maildesk to roll back)" if saved else ""))
    return 0


COMMANDS = {"migrate": migrate_command, "backup": backup_command, "restore": restore_command}


# --- after a restore: the daemon's first connection reads the processed folder again ----------

def recover(daemon) -> int:
    """Handle again what the processed folder holds since shortly before the restored backup
    and the database does not know; send nothing for it. Returns how many were handled."""
    store, cfg, inbox = daemon.store, daemon.cfg, daemon.inbox
    since = store.get_state(RECOVER_KEY)
    if not since:
        return 0
    fetched = inbox.read_since(cfg.mailbox.processed_folder, (from_iso(since) - MARGIN).date(),
                               int(cfg.mailbox.max_message_mb * 1024 * 1024))
    fetched.sort(key=lambda f: (f.arrived_at, f.uid))
    _mark_what_went_out(store, inbox)
    lost = _lost_references(store, cfg, [*fetched, *_our_sent_mail(inbox, cfg, since)])
    first_new = maintenance.last_complaint_id(store) + 1
    workflow, handled = daemon.app.workflow, 0
    workflow.silent = True  # this mail was answered the first time round
    try:
        for item in fetched:
            with store.transaction():
                outcome = daemon._receive(item)
                handled += outcome.action == "processed"
                _take_back_reference(store, outcome, lost, first_new)
        with store.transaction():
            store.clear_state(RECOVER_KEY)
    finally:
        workflow.silent = False
    log_event("recovered_after_restore", since=since, read=len(fetched), handled=handled)
    return handled


def _mark_what_went_out(store, inbox) -> None:
    """Mail the backup holds as queued may have gone out after it was taken: what the Sent folder
    holds (Gmail files there all it sent for us) is marked sent, so nobody gets it twice."""
    queued = maintenance.queued_mail(store)
    if not queued:
        return
    try:
        found = inbox.sent_copies([q.message_id for q in queued])
    except MailboxError as e:
        log_event("recovery_without_sent", severity=30, error=str(e)[:200], queued=len(queued))
        return
    now = utcnow()
    with store.transaction():
        for q in queued:
            if q.message_id in found:
                maintenance.mark_sent(store, q.id, now, "found in Sent after a restore")
    log_event("recovered_sent_marks", queued=len(queued), found_in_sent=len(found))


def _our_sent_mail(inbox, cfg, since: str) -> list:
    """What the Sent folder holds since shortly before the backup (Gmail files there everything
    its SMTP server sent for us): our acknowledgement of a complaint opened after the backup
    answers the customer's first mail under the complaint's reference, so that complaint gets its
    reference back even when no later mail of the customer's carries it. [] without a Sent folder."""
    try:
        folder = inbox.sent_folder_name() or inbox.find_special(b"\\Sent")
        if not folder:
            return []
        return inbox.read_since(folder, (from_iso(since) - MARGIN).date(),
                                int(cfg.mailbox.max_message_mb * 1024 * 1024))
    except MailboxError as e:  # no Sent to read: later customer mail is then the only guide
        log_event("recovery_without_sent", severity=30, error=str(e)[:200])
        return []


def _lost_references(store, cfg, fetched) -> dict[str, str]:
    """Message-ID -> the reference that later mail in its thread carries but the restored
    database does not know: the complaint that message opened before the restore."""
    from maildesk.inbound.parse import ParseError, parse
    out: dict[str, str] = {}
    for item in fetched:
        try:
            mail = parse(item.raw)
        except ParseError:
            continue
        unknown = [r for r in refs.find_references(cfg.policy.reference_prefix, mail.subject)
                   if store.complaint(r) is None]
        if unknown:
            for mid in (*mail.references, *mail.in_reply_to):
                out.setdefault(mid, unknown[0])
    return out


def _take_back_reference(store, outcome, lost: dict[str, str], first_new: int) -> None:
    """A complaint opened again during the recovery gets its old reference back."""
    if outcome.action != "processed" or not outcome.ref or outcome.message_id not in lost:
        return
    old = lost[outcome.message_id]
    row = store.complaint(outcome.ref)
    if row is None or row["id"] < first_new or store.complaint(old) is not None:
        return
    maintenance.give_back_reference(store, row["id"], outcome.ref, old)
    store.add_event(row["id"], utcnow(), "maildesk", "recovered", reference=old, note="handled again after a restore")
