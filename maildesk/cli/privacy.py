"""`maildesk privacy export ADDRESS --out FILE.zip` (or `--seller ID`), `maildesk privacy erase
ADDRESS --reason TEXT [--by NAME] [--dry-run] [--force] [--keep-mailbox]` and `maildesk privacy
erased ADDRESS`: a person's access and erasure requests (service/privacy.py). Export reads only
(it works beside the running daemon); erase writes one complaint per transaction, as `merge` does."""
from __future__ import annotations

import sys
from pathlib import Path

from maildesk.cli import report
from maildesk.cli.display import shown
from maildesk.cli.sellers import login_name
from maildesk.clock import utcnow
from maildesk.service import privacy


def add_parser(sub) -> None:
    p = sub.add_parser("privacy", help="a person's personal data: export it (RGPD art. 15/20) or erase it (art. 17)")
    ps = p.add_subparsers(dest="privacy_command", required=True)
    ex = ps.add_parser("export", help="everything held about one address (or one seller) in a zip; changes nothing")
    ex.add_argument("address", nargs="?", help="the person's address (any spelling)")
    ex.add_argument("--seller", default=None, help="export a seller's record instead (registry id)")
    ex.add_argument("--out", required=True, help="the zip file to write")
    er = ps.add_parser("erase", help="anonymise everything held about one address; statistics stay")
    er.add_argument("address", help="the person's address (any spelling: case, +tag, Gmail dots)")
    er.add_argument("--reason", required=True, help="why (kept in the audit; the address never is)")
    er.add_argument("--by", default=None, help="who erased, for the audit trail (default: your login)")
    er.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    er.add_argument("--force", action="store_true", help="erase even complaints still open")
    er.add_argument("--keep-mailbox", action="store_true",
                    help="leave the IMAP processed and quarantine folders alone")
    q = ps.add_parser("erased", help="was this address erased? when, by whom, why")
    q.add_argument("address", help="the address to look for in the erasure audit (by its keyed hash)")


def reads_only(args) -> bool:
    return args.privacy_command in ("export", "erased") or (args.privacy_command == "erase" and args.dry_run)


def privacy_command(app, args) -> int:
    return {"export": _export, "erase": _erase, "erased": _erased}[args.privacy_command](app, args)


def _export(app, args) -> int:
    now, out = utcnow(), Path(args.out)
    if args.seller:
        counts = privacy.export_seller(app.store, args.seller, out, now)
        if counts is None:
            return _refused(f"no seller {args.seller} in the registry")
        print(f"{out}: seller {args.seller}: {counts['messages']} message(s), {counts['events']} event(s), "
              f"{counts['strikes']} strike(s)")
        return 0
    if not args.address:
        return _refused("an ADDRESS or --seller ID goes with export")

    def timeline(ref: str):
        doc = report.show(app.store, app.cfg, ref, now)
        return doc, report.format_show(doc, app.cfg)

    counts = privacy.export_person(app.store, args.address, out, now, timeline)
    if counts["empty"]:
        print(f"{out}: nothing is held about {shown(args.address)}; the archive says so")
    else:
        print(f"{out}: {counts['complaints']} complaint(s), {counts['messages']} message(s), "
              f"{counts['files']} file(s)")
    return 0


def _erase(app, args) -> int:
    cfg, now, by = app.cfg, utcnow(), args.by or login_name()
    key = privacy.privacy_key(cfg.database_path)
    names = privacy.names_of(app.store, args.address)
    result = privacy.erase_person(app.store, cfg, args.address, reason=args.reason, by=by, now=now, key=key,
                                  dry_run=args.dry_run, force=args.force)
    if result.refused:
        return _refused(result.refused)
    p = result.plan
    if args.dry_run:
        print(f"would erase: {p['complaints']} complaint(s) ({len(p['open'])} open), {p['messages']} message(s) "
              f"({p['messages_elsewhere']} on other complaints), {p['attachments']} attachment(s), "
              f"{p['outbox_waiting']} mail(s) waiting to be cancelled, {p['quarantine']} quarantined mail(s); "
              f"{'mailbox kept' if args.keep_mailbox else 'their mail deleted from the processed and quarantine folders'}")
        return 0
    print(f"erased: {len(result.complaints)} complaint(s) anonymised ({', '.join(result.complaints) or 'none'}); "
          + ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if v))
    if result.file.get("busy"):
        print("warning: a reader kept the WAL (the daemon mid-pass): run the same erase again to truncate it")
    if not args.keep_mailbox:
        inbox = app.make_inbox()
        inbox.connect()
        try:
            found = privacy.erase_from_mailbox(inbox, [cfg.mailbox.processed_folder, cfg.mailbox.quarantine_folder],
                                               args.address, result.complaints)
        finally:
            inbox.close()
        print("mailbox: " + ", ".join(f"{n} deleted from {f}" for f, n in found.items()))
    if cfg.logging.file:
        masked = privacy.erase_from_logs([cfg.resolve(cfg.logging.file)], args.address, names)
        print("log files: " + (", ".join(f"{n} mention(s) masked in {f}" for f, n in masked.items()) or "none"))
    print("not reached: copies outside maildesk (Gmail's All Mail and Sent, backups made before today)")
    return 0


def _erased(app, args) -> int:
    found = privacy.erased(app.store, args.address, privacy.privacy_key(app.cfg.database_path))
    if not found:
        print(f"no erasure of {shown(args.address)} recorded")
        return 0
    for r in found:
        print(f"erased {r['at']} by {shown(r['actor'])}")
    return 0


def _refused(line: str) -> int:
    print(f"maildesk: {shown(line)}", file=sys.stderr)
    return 1


COMMANDS = {"privacy": privacy_command}
