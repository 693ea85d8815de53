"""The `maildesk` command. Parses arguments, calls the app, prints results;
holds no business rules. Exit status: 0 fine, 1 failed, 2 bad config or usage."""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from . import admin, logs, report, seller_cli
from .config import ConfigError, load
from .daemon import utcnow



def _print_json(doc) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maildesk", description="E-mail helpdesk that keeps imolocale's dispute policy.")
    p.add_argument("--config", default="maildesk.toml", help="config file (default ./maildesk.toml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon (IDLE or polling) until stopped")
    run.add_argument("--dry-run", action="store_true", help="read the inbox without changing it; write mail to .eml files")
    once = sub.add_parser("once", help="handle what is waiting, run what is due, send the outbox, exit")
    once.add_argument("--dry-run", action="store_true", help="as for run")

    demo = sub.add_parser("demo", help="start a throwaway local helpdesk (Dovecot + SMTP) and show it answering")
    demo.add_argument("--dir", default=".demo", help="where the demo keeps its mail and database")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)")

    dsend = sub.add_parser("demo-send", help="send a complaint to the running demo's support address")
    dsend.add_argument("--dir", default=".demo")
    dsend.add_argument("--from", dest="sender", default="newcomer@example.com")
    dsend.add_argument("--name", default="")
    dsend.add_argument("--subject", default="Ma réclamation")
    dsend.add_argument("text", nargs="?", default="Bonjour, ma commande n'est jamais arrivée.")

    show = sub.add_parser("show", help="a complaint's whole timeline")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")

    resolve = sub.add_parser("resolve", help="resolve a complaint and ask the customer for a rating")
    resolve.add_argument("ref")
    resolve.add_argument("--note", default="", help="text for the customer, in the resolution mail")
    resolve.add_argument("--by", default="cli", help="who resolved it (for the audit trail)")

    auth = sub.add_parser("auth", help="sign in to Gmail with OAuth2 once and print the refresh token")
    auth.add_argument("provider", choices=("gmail",))
    auth.add_argument("--redirect-uri", default=None, help="loopback address registered for the OAuth2 client")

    imp = sub.add_parser("import-mbox", help="load an existing mailbox (mbox, e.g. Google Takeout) as history; sends nothing")
    imp.add_argument("file")

    lst = sub.add_parser("list", help="complaints, newest first")
    lst.add_argument("--level", type=int, choices=(1, 2, 3))
    lst.add_argument("--status", choices=("open", "waiting_customer", "resolved", "closed"))
    lst.add_argument("--overdue", action="store_true", help="open and past a policy deadline (24 h, 48 h, 5 days) not met")
    lst.add_argument("--seller")
    lst.add_argument("--customer")
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true")
    seller_cli.add_parsers(sub)  # seller import|list|show|restrict|terminate|reinstate, link
    admin.add_parsers(sub)  # status, check, init, digest, outbox, quarantine
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo
        return run_demo(Path(args.dir), args.seconds)
    if args.command == "demo-send":
        from .demo import demo_send
        return demo_send(Path(args.dir), args.sender, args.subject, args.text, args.name)
    if args.command == "init":  # writes the config, so it cannot need one
        return admin.init(args)
    try:
        cfg = load(args.config)
    except ConfigError as e:
        print(f"maildesk: config error: {e}", file=sys.stderr)
        return 2
    logs.configure(cfg)
    if args.command in admin.WITHOUT_APP:  # status, check: report missing secrets instead of stopping on them
        return admin.WITHOUT_APP[args.command](cfg, args)
    if args.command == "auth":  # before App: the refresh token it needs does not exist yet
        import os
        from . import oauth2
        return oauth2.authorize(cfg, os.environ, sys.stdin, sys.stdout, sys.stderr,
                                args.redirect_uri or oauth2.REDIRECT_URI)
    from .app import App
    try:
        app = App(cfg, dry_run=getattr(args, "dry_run", False))
    except ConfigError as e:
        print(f"maildesk: config error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command in ("run", "once"):  # a missing or broken template stops here, not on every mail
            from .template_check import problems
            found = problems(app.templates, cfg)
            if found:
                more = f" (and {len(found) - 1} more: `maildesk check` lists them)" if len(found) > 1 else ""
                print(f"maildesk: {found[0]}{more}", file=sys.stderr)
                return 2
        return COMMANDS[args.command](app, args)
    finally:
        app.close()


def cmd_run(app, args) -> int:
    from .daemon import AlreadyRunning, Daemon
    try:
        return Daemon(app).run()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1


def cmd_once(app, args) -> int:
    from .daemon import AlreadyRunning, Daemon
    from .imap import MailboxError
    try:
        return Daemon(app).once()
    except AlreadyRunning as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    except sqlite3.OperationalError as e:  # locked, full: nothing was half-done, mail waits in the inbox
        print(f"maildesk: database problem ({app.cfg.database_path}): {e}; run again when it is fixed",
              file=sys.stderr)
        return 1


def cmd_show(app, args) -> int:
    doc = report.show(app.store, app.cfg, args.ref, utcnow())
    if doc is None:
        print(f"maildesk: no complaint {args.ref}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(doc)
    else:
        print(report.format_show(doc, app.cfg))
    return 0


def cmd_resolve(app, args) -> int:
    now = utcnow()
    try:
        with app.store.transaction():
            decision = app.workflow.resolve(args.ref, args.note, args.by, now)
    except KeyError:
        print(f"maildesk: no complaint {args.ref}", file=sys.stderr)
        return 1
    if any(e.kind == "resolve_ignored" for e in decision.events):
        print(f"{args.ref.upper()} was already resolved or closed; nothing sent.")
        return 0
    app.outbox.flush(now)
    print(f"{args.ref.upper()} resolved; the customer was asked to rate the solution.")
    return 0


def cmd_list(app, args) -> int:
    rows = report.list_complaints(app.store, level=args.level, status=args.status,
                                  overdue_at=utcnow() if args.overdue else None, seller=args.seller,
                                  customer=args.customer, limit=args.limit, cfg=app.cfg)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['ref']:<11} L{r['level']} {r['status']:<16} {r['first_contact'][:16]}  "
              f"{r['customer_addr']:<30} {r['subject'][:50]}"
              + (f"  missed: {', '.join(r['missed'])}" if r.get("missed") else ""))
    print(f"{len(rows)} complaint(s)")
    return 0


def cmd_import_mbox(app, args) -> int:
    from .importer import import_mbox
    path = Path(args.file)
    if not path.is_file():
        print(f"maildesk: {path} is not a file", file=sys.stderr)
        return 1
    r = import_mbox(app, path, progress=sys.stderr.isatty())
    print(f"{r.messages} message(s) read: {r.complaints} complaint(s) created, {r.duplicates} already known, "
          f"{r.skipped} skipped (see the log). Nothing was sent.")
    return 0


COMMANDS = {"run": cmd_run, "once": cmd_once, "show": cmd_show, "resolve": cmd_resolve, "list": cmd_list}
COMMANDS["import-mbox"] = cmd_import_mbox
COMMANDS.update(seller_cli.COMMANDS)
COMMANDS.update(admin.COMMANDS)

if __name__ == "__main__":
    sys.exit(main())
