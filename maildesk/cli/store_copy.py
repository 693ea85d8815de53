"""`maildesk store copy --to postgresql://...`: moving a deployment from its SQLite file to PostgreSQL
(store/copying.py does the work). Run it again after an interruption: it carries on. The password
comes from --password-env, --password-file or libpq's own PGPASSWORD / ~/.pgpass, never the URL,
and is never printed."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from maildesk.config import ConfigError
from maildesk.lock import AlreadyRunning, alone
from maildesk.store.db import Store, StoreUnwell, safe_url
from maildesk.testing import faults


def add_parser(sub) -> None:
    store = sub.add_parser("store", help="the database itself: copy it from SQLite to PostgreSQL")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    cp = actions.add_parser("copy", help="copy the SQLite database into an empty PostgreSQL database "
                                         "(resumable: run it again after an interruption; verified per table)")
    cp.add_argument("--to", required=True, metavar="URL", help="postgresql://USER@HOST:PORT/DATABASE, no password in it")
    password = cp.add_mutually_exclusive_group()
    password.add_argument("--password-env", metavar="VAR", help="the password is in this environment variable")
    password.add_argument("--password-file", metavar="FILE", help="the password is in this file "
                          "(neither: libpq's PGPASSWORD or ~/.pgpass)")


def store_command(cfg, args) -> int:
    parts = urlsplit(args.to)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"--to must look like postgresql://USER@HOST:PORT/DATABASE, got {safe_url(args.to)!r}")
    if parts.password is not None:
        raise ConfigError("--to holds a password: give it with --password-env, --password-file or PGPASSWORD")
    password = _password(args)
    path = cfg.database_path
    if not path.exists():
        print(f"maildesk: no database at {path}: nothing to copy", file=sys.stderr)
        return 1
    try:
        with alone(path, "copying its database"):
            source = Store(path, readonly=True)
            try:
                return _copy(source, args.to, password)
            finally:
                source.close()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1


def _password(args) -> str | None:
    """--password-env or --password-file; None lets libpq find it (PGPASSWORD, ~/.pgpass)."""
    if args.password_env:
        if not os.environ.get(args.password_env):
            raise ConfigError(f"--password-env names {args.password_env}, which is not set in the environment")
        return os.environ[args.password_env]
    if args.password_file:
        try:
            return Path(args.password_file).expanduser().read_text().strip()
        except OSError as e:
            raise ConfigError(f"--password-file {args.password_file} cannot be read: {e.strerror}") from None
    return None


def _copy(source: Store, url: str, password: str | None) -> int:
    import psycopg  # only here: a maildesk on SQLite never loads the PostgreSQL driver
    from maildesk.store import copying
    from maildesk.store.postgres import PgStore
    target = PgStore(url, password)  # StoreUnreachable, SchemaError: main prints their one line (exit 2)
    try:
        copied = [0]
        try:
            resumed = copying.claim(target, source)
            t0 = time.perf_counter()
            with tqdm(total=sum(copying.row_counts(source).values()), initial=sum(copying.row_counts(target).values()),
                      unit=" rows", desc="copying", file=sys.stderr, leave=False, disable=not sys.stderr.isatty()) as bar:
                def advance(n: int) -> None:  # after each committed batch
                    copied[0] += n
                    bar.update(n)
                    faults.step("copy_batch")  # where the tests interrupt a copy
                checks = copying.copy_all(source, target, advance)
        except copying.CopyRefused as e:
            print(f"maildesk: {e}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, StoreUnwell, psycopg.OperationalError) as e:
            why = "interrupted" if isinstance(e, KeyboardInterrupt) else f"PostgreSQL failed ({' '.join(str(e).split())})"
            print(f"maildesk: {why} after {copied[0]} rows; run the same command again to carry on", file=sys.stderr)
            return 130 if isinstance(e, KeyboardInterrupt) else 1
        seconds = time.perf_counter() - t0
    finally:
        target.close()
    print(f"{'table':<16} {'rows':>9}  checksum")
    for c in checks:
        rows = f"{c.target_rows}" if c.source_rows == c.target_rows else f"{c.target_rows}/{c.source_rows}"
        print(f"{c.table:<16} {rows:>9}  {'ok' if c.ok else 'DIFFERS'}")
    rate = copied[0] / seconds if seconds > 0 else 0.0
    print(f"{copied[0]} rows copied{' (resumed)' if resumed else ''} in {seconds:.1f} s ({rate:,.0f} rows/s) "
          f"to {target.where}")
    bad = [c.table for c in checks if not c.ok]
    if bad:
        print(f"maildesk: the copy differs from the SQLite database in {', '.join(bad)}: was the SQLite "
              f"database written to since the copy began? Copy into a new, empty database", file=sys.stderr)
        return 1
    return 0


COMMANDS = {"store": store_command}
