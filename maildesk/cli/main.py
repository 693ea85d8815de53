"""The `maildesk` command. Parses arguments, calls the app, prints results;
holds no business rules. Exit status: 0 fine, 1 failed, 2 bad config or usage."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from maildesk import __version__, logs
from maildesk.cli import (
    admin, attachment as attachment_cli, check, merge as merge_cli, privacy as privacy_cli, report,
    sellers as seller_cli,
)
from maildesk.cli.common import number
from maildesk.service import ops
from maildesk.core import categories, timefmt
from maildesk.config import ConfigError, load
from maildesk.clock import utcnow
from maildesk.cli.display import dumps, shown
from maildesk.service.seller_import import ImportFileError
from maildesk.store.db import DatabaseReadOnly, SchemaError, StoreUnreachable, StoreUnwell, file_owner, file_trouble

PATH_ARGS = {"config", "file", "dir"}  # may hold any bytes the file system allows


class Refused(Exception):
    """Input the command refuses: `main` prints the message as one line and exits 1."""


class Parser(argparse.ArgumentParser):
    """Usage errors as one line that says where the help is (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {shown(message)} (see {self.prog} --help)\n")


def _print_json(doc) -> None:
    print(dumps(doc))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="maildesk", description="E-mail helpdesk that keeps imolocale's dispute policy.")
    p.add_argument("--config", default="maildesk.toml", help="config file (default ./maildesk.toml)")
    p.add_argument("--version", action="version", version=f"maildesk {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error "
                   "(also MAILDESK_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon (IDLE or polling) until stopped")
    run.add_argument("--dry-run", action="store_true", help="read the inbox without changing it; write mail to .eml files")
    once = sub.add_parser("once", help="handle what is waiting, run what is due, send the outbox, exit")
    once.add_argument("--dry-run", action="store_true", help="as for run")

    demo = sub.add_parser("demo", help="start a throwaway local helpdesk (Dovecot + SMTP) and show it answering")
    demo.add_argument("--dir", default=".demo", help="where the demo keeps its mail and database")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)")

    dsend = sub.add_parser("demo-send", help="send a complaint to the running demo's support address")
    dsend.add_argument("--dir", default=".demo", help="the running demo's folder (default .demo)")
    dsend.add_argument("--from", dest="sender", default="newcomer@example.com", help="the customer's address")
    dsend.add_argument("--name", default="", help="the customer's display name")
    dsend.add_argument("--subject", default="Ma réclamation", help="the mail's subject")
    dsend.add_argument("text", nargs="?", default="Bonjour, ma commande n'est jamais arrivée.", help="the mail's text")

    show = sub.add_parser("show", help="a complaint's whole timeline")
    show.add_argument("ref", help="the complaint's reference, e.g. IMO-4K7M2Q")
    show.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")

    resolve = sub.add_parser("resolve", help="resolve a complaint and ask the customer for a rating")
    resolve.add_argument("ref", help="the complaint's reference")
    resolve.add_argument("--note", default="", help="text for the customer, in the resolution mail")
    resolve.add_argument("--by", default=None, help="who resolved it, for the audit trail (default: your login)")

    auth = sub.add_parser("auth", help="sign in to Gmail with OAuth2 once and print the refresh token")
    auth.add_argument("provider", choices=("gmail",), help="the mail provider (gmail)")
    auth.add_argument("--redirect-uri", default=None, help="loopback address registered for the OAuth2 client")

    imp = sub.add_parser("import-mbox", help="load an existing mailbox (mbox, e.g. Google Takeout) as history; sends nothing")
    imp.add_argument("file", help="the mbox file")
    imp.add_argument("--open-recent", type=float, metavar="DAYS",
                     help="keep complaints first seen in the last DAYS open (default: all imported ones are closed "
                          "as status 'imported': no clock, not overdue, not in the digest's ages)")

    back = sub.add_parser("backfill", help="load the mail the first start left in the inbox as history; sends nothing")
    back.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="from this day on (local time)")

    lst = sub.add_parser("list", help="complaints, newest first")
    lst.add_argument("--level", type=int, choices=(1, 2, 3), help="only this level")
    lst.add_argument("--status", choices=("open", "waiting_customer", "resolved", "closed", "imported"),
                     help="only this status")
    lst.add_argument("--overdue", action="store_true", help="open and past a policy deadline (24 h, 48 h, 5 days) not met")
    lst.add_argument("--seller", help="only complaints linked to this seller id")
    lst.add_argument("--customer", help="only this customer's address")
    lst.add_argument("--category", help="only this category (see [categories] in the config)")
    lst.add_argument("--limit", type=number, default=200, help="at most this many (default 200)")
    lst.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")
    seller_cli.add_parsers(sub)  # seller import|list|show|restrict|terminate|reinstate, link
    admin.add_parsers(sub)  # status, check, init, digest, outbox, quarantine
    merge_cli.add_parser(sub)  # merge
    attachment_cli.add_parser(sub)  # attachment REF [N --out DIR]
    privacy_cli.add_parser(sub)  # privacy export|erase|erased
    ops.add_parsers(sub)  # migrate, backup, restore
    _config_after_command(p)
    return p


def _config_after_command(parser: argparse.ArgumentParser) -> None:
    """`maildesk list --config X` as well as `maildesk --config X list`: every subcommand takes
    --config too, set only when given (SUPPRESS), so it never hides the one before the command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--config", default=argparse.SUPPRESS, help="config file (default ./maildesk.toml)")
                _config_after_command(command)


def reads_only(args) -> bool:
    """Commands that only read the database: they open it read-only and need no secrets
    unless they connect (`quarantine list`, `status` without --no-connect)."""
    c = args.command
    if c in ("list", "show", "status", "check", "backup", "export", "search", "dossier", "attachment"):
        return True
    if c == "digest":
        return not args.send
    if c == "outbox":
        return args.retry is None and not args.all and args.action != "cancel"
    if c == "quarantine":
        return args.action == "list"
    if c == "privacy":
        return privacy_cli.reads_only(args)
    if c == "seller":
        return args.seller_command in ("list", "show")
    return False


def wrong_owner(cfg, argv: list[str]) -> str | None:
    """The refusal for a command that writes, run by someone other than the database's owner:
    a database (or its WAL files) left owned by root stops the daemon. None when all is well,
    or when there is no database yet (then the caller will own it)."""
    path = cfg.database_path
    if not path.exists() or path.stat().st_uid == os.geteuid():
        return None
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--config":
            skip = True
        elif not a.startswith("--config="):
            rest.append(a)
    owner = file_owner(path)
    command = shlex.join(["sudo", "-u", owner, "maildesk", "--config", str(cfg.path or "maildesk.toml"), *rest])
    return (f"maildesk: {path} belongs to {owner}; commands that change it must run as {owner} "
            f"(else files it creates would lock the daemon out). Run:\n  {command}")


def main(argv: list[str] | None = None) -> int:
    """Run one command. Whatever goes wrong ends as one line on stderr, never a traceback:
    2 for usage or config, 1 for refused input or an unreachable server or database,
    1 with a request to report it for a bug (--debug or MAILDESK_DEBUG=1 show the traceback)."""
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 terminal gets escapes, not an error
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value in vars(args).items():  # ids, references, addresses: bytes that are not UTF-8 cannot match
        if isinstance(value, str) and name not in PATH_ARGS and any("\udc80" <= ch <= "\udcff" for ch in value):
            parser.error(f"argument {name} is not UTF-8 text")
    try:
        return _command(args, argv)
    except Exception as e:
        known = _known(e)
        if known is None and (args.debug or os.environ.get("MAILDESK_DEBUG") == "1"):
            raise
        code, message = known or (1, f"unexpected error, a bug in maildesk: {type(e).__name__}: {e}; "
                                     "run again with --debug to see the traceback and please report it")
        if message:
            print(f"maildesk: {shown(message)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("maildesk: interrupted", file=sys.stderr)
        return 130


def _known(e: Exception) -> tuple[int, str] | None:
    """(exit status, one line) for the errors a command may meet in normal use; None for a bug."""
    from maildesk.adapters.imap_types import MailboxError
    if isinstance(e, ConfigError):
        return 2, f"config error: {e}"
    if isinstance(e, (SchemaError, DatabaseReadOnly, StoreUnreachable)):  # what to run, whose, where
        return 2, str(e)
    if isinstance(e, (Refused, ImportFileError, MailboxError)):
        return 1, str(e)
    if isinstance(e, BrokenPipeError):  # `maildesk list | head`: the reader has all it wanted
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1, ""
    if isinstance(e, OSError):
        return 1, f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    if file_trouble(e):  # locked, full, not a database
        return 1, f"database problem: {e}"
    return None


def _command(args, argv: list[str]) -> int:
    if args.command in ("demo", "demo-send"):
        try:
            from maildesk.testing import demo
        except ImportError as e:  # a production install: no demo extra
            print(f"maildesk: the demo needs {e.name}: pip install 'maildesk[demo]' (and Dovecot: "
                  "apt-get install dovecot-imapd), or run scripts/demo from a clone", file=sys.stderr)
            return 2
        if args.command == "demo":
            return demo.run_demo(Path(args.dir), args.seconds)
        return demo.demo_send(Path(args.dir), args.sender, args.subject, args.text, args.name)
    if args.command == "init":  # writes the config, so it cannot need one
        return check.init(args)
    try:
        cfg = load(args.config)
    except OSError as e:  # a directory, unreadable
        raise ConfigError(f"cannot read config file {args.config}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {args.config} is not UTF-8 text") from None
    if cfg.unknown:
        print(f"maildesk: warning: {cfg.path} has settings this version ({__version__}) does not know, "
              f"ignored: {', '.join(cfg.unknown)}", file=sys.stderr)
    readonly = reads_only(args)
    if not readonly and args.command != "auth" and (refusal := wrong_owner(cfg, argv)):
        print(refusal, file=sys.stderr)
        return 2
    logs.configure(cfg)
    if args.command in ops.COMMANDS:  # they open the database their own way
        return ops.COMMANDS[args.command](cfg, args)
    if args.command in admin.WITHOUT_APP:  # status, check: report missing secrets instead of stopping on them
        return admin.WITHOUT_APP[args.command](cfg, args)
    if args.command == "auth":  # before App: the refresh token it needs does not exist yet
        from maildesk.adapters import oauth2
        return oauth2.authorize(cfg, os.environ, sys.stdin, sys.stdout, sys.stderr,
                                args.redirect_uri or oauth2.REDIRECT_URI)
    app = _app(cfg, args, readonly)
    try:
        if args.command in ("run", "once"):  # a missing or broken template stops here, not on every mail
            from maildesk.service.template_check import problems
            found = problems(app.templates, cfg)
            if found:
                more = f" (and {len(found) - 1} more: `maildesk check` lists them)" if len(found) > 1 else ""
                print(f"maildesk: {found[0]}{more}", file=sys.stderr)
                return 2
        return COMMANDS[args.command](app, args)  # a secret read when first needed: ConfigError, exit 2
    finally:
        app.close()


def _app(cfg, args, readonly: bool):
    """The App; `run` waits for an unreachable PostgreSQL with back-off (every other command says so
    in one line and exits 2): a daemon started before its database server must not die of it."""
    from maildesk.app import App
    delay = 1.0
    while True:
        try:
            return App(cfg, dry_run=getattr(args, "dry_run", False), readonly=readonly)
        except StoreUnreachable as e:
            if args.command != "run":
                raise
            logs.event("database_unreachable", severity=40, error=str(e)[:300], retry_in=f"{delay:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 60)


def cmd_run(app, args) -> int:
    from maildesk.lock import AlreadyRunning
    from maildesk.daemon import Daemon
    from maildesk.adapters.imap_types import FolderMissing
    try:
        return Daemon(app).run()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except FolderMissing as e:  # retrying cannot help: one line, and systemd sees the failure
        print(f"maildesk: {e}", file=sys.stderr)
        return 2


def cmd_once(app, args) -> int:
    from maildesk.lock import AlreadyRunning
    from maildesk.daemon import Daemon
    from maildesk.adapters.imap_types import MailboxError
    try:
        return Daemon(app).once()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except StoreUnwell as e:  # locked, full: nothing was half-done, mail waits in the inbox
        print(f"maildesk: database problem ({app.store.where}): {e}; run again when it is fixed",
              file=sys.stderr)
        return 1


def cmd_show(app, args) -> int:
    doc = report.show(app.store, app.cfg, report.reference(app.cfg, args.ref), utcnow())
    if doc is None:
        raise Refused(f"no complaint {args.ref}")
    if args.json:
        _print_json(doc)
    else:
        print(report.format_show(doc, app.cfg))
    return 0


def cmd_resolve(app, args) -> int:
    now = utcnow()
    ref = report.reference(app.cfg, args.ref)
    try:
        with app.store.transaction():
            decision = app.workflow.resolve(ref, args.note, args.by or seller_cli.login_name(), now)
    except KeyError:
        raise Refused(f"no complaint {args.ref}") from None
    if any(e.kind == "resolve_ignored" for e in decision.events):
        print(f"{ref} was already resolved or closed; nothing sent.")
        return 0
    app.outbox.flush(now)
    print(f"{ref} resolved; the customer was asked to rate the solution.")
    return 0


def cmd_list(app, args) -> int:
    category = args.category and categories.find(args.category, app.cfg.categories)
    if args.category and category is None:
        raise Refused(categories.unknown(args.category, app.cfg.categories).replace("#category", "--category"))
    rows = report.list_complaints(app.store, level=args.level, status=args.status,
                                  overdue_at=utcnow() if args.overdue else None, seller=args.seller,
                                  customer=args.customer, limit=args.limit, cfg=app.cfg, category=category)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(shown(f"{r['ref']:<11} L{r['level']} {r['status']:<16} {timefmt.local(r['first_contact'], app.cfg.tz)}  "
                    f"{r['customer_addr']:<30} [{r['category']}] {r['subject'][:50]}"
                    + (f"  missed: {', '.join(r['missed'])}" if r.get("missed") else "")))
    print(f"{len(rows)} complaint(s)")
    return 0


def cmd_import_mbox(app, args) -> int:
    from maildesk.service.importer import import_mbox
    path = Path(args.file)
    if not path.is_file():
        print(f"maildesk: {path} is not a file", file=sys.stderr)
        return 1
    r = import_mbox(app, path, progress=sys.stderr.isatty(), open_recent_days=args.open_recent)
    print(f"{r.messages} message(s) read: {r.complaints} complaint(s) created, {r.duplicates} already known, "
          f"{r.skipped} skipped (see the log). Nothing was sent. {r.kept_open} imported complaint(s) left open; "
          f"the others are history (status 'imported').")
    return 0


def cmd_backfill(app, args) -> int:
    from datetime import date, datetime
    from maildesk.daemon import Daemon
    from maildesk.adapters.imap_types import MailboxError
    try:
        day = date.fromisoformat(args.since)
    except ValueError:
        print(f"maildesk: --since wants a date like 2024-01-31, not {args.since!r}", file=sys.stderr)
        return 2
    since = datetime.combine(day, datetime.min.time(), tzinfo=app.cfg.tz)
    try:
        r = Daemon(app).backfill(since)
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    if r is None:
        print("nothing to backfill: the first start left no mail in the inbox")
        return 0
    print(f"{r.messages} message(s) read: {r.complaints} complaint(s) created, {r.duplicates} already known, "
          f"{r.skipped} skipped (see the log). Nothing was sent; the messages stay in the inbox.")
    return 0


COMMANDS = {"run": cmd_run, "once": cmd_once, "show": cmd_show, "resolve": cmd_resolve, "list": cmd_list}
COMMANDS["import-mbox"] = cmd_import_mbox
COMMANDS["backfill"] = cmd_backfill
COMMANDS.update(seller_cli.COMMANDS)
COMMANDS.update(admin.COMMANDS)
COMMANDS.update(merge_cli.COMMANDS)
COMMANDS.update(attachment_cli.COMMANDS)
COMMANDS.update(privacy_cli.COMMANDS)

if __name__ == "__main__":
    sys.exit(main())
