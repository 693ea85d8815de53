"""`maildesk quarantine` and `maildesk spam`: the mailbox folders maildesk leaves mail in (what
it could not handle, what Gmail called spam), listed, and moved back to be handled."""
from __future__ import annotations

import sys

from maildesk.cli.common import local, number, print_json, progress
from maildesk.cli.display import shown
from maildesk.service import digest, quarantine


def add_parsers(sub) -> None:
    qu = sub.add_parser("quarantine", help="messages maildesk could not handle: list, or retry")
    qu.add_argument("action", nargs="?", choices=("list", "retry"), default="list",
                    help="list (default) or retry UID... / --all")
    qu.add_argument("uids", nargs="*", type=number, metavar="UID", help="UIDs in the quarantine folder (from list)")
    qu.add_argument("--all", action="store_true", help="retry every message in the quarantine folder")
    qu.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")

    sp = sub.add_parser("spam", help="mail in Gmail's spam folder: list it, or move one to the inbox to be handled")
    sp.add_argument("action", nargs="?", choices=("list", "rescue"), default="list",
                    help="list (default) or rescue UID")
    sp.add_argument("uid", nargs="?", type=int, metavar="UID", help="for rescue: the UID shown by list")
    sp.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")


def quarantine_command(app, args) -> int:
    from maildesk.adapters.imap_types import MailboxError
    try:
        if args.action == "retry":
            if not args.uids and not args.all:
                print("maildesk: name the UIDs to retry (see `maildesk quarantine list`), or --all", file=sys.stderr)
                return 2
            if app.cfg.mailbox.read_only:
                print("maildesk: mailbox.read_only is set: nothing can be moved", file=sys.stderr)
                return 1
            return _retry(app, args)
        return _list(app, args)
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1


def _list(app, args) -> int:
    with quarantine.Folder(app) as folder:
        items = folder.list(progress)
    if args.json:
        print_json(items)
        return 0
    tz = app.cfg.tz
    for q in items:
        print(shown(f"uid {q['uid'] if q['uid'] is not None else '-':<6} {local(q['at'], tz)}  "
                    f"{q['status'] or 'no record':<8} {q['sender'] or '?'}  {digest.one_line(q['subject'], 50)!r}"))
        if q["reason"]:
            print(f"{'':11}reason: {shown(digest.one_line(q['reason'], 100))}")
    held = sum(1 for q in items if q["uid"] is not None)
    print(f"{held} message(s) in {app.cfg.mailbox.quarantine_folder}"
          + ("; retry with: maildesk quarantine retry UID (or --all)" if held else ""))
    return 0


def _retry(app, args) -> int:
    with quarantine.Folder(app) as folder:
        uids = folder.uids() if args.all else args.uids
        moved, missing = folder.retry(uids, progress)
    for uid in missing:
        print(f"maildesk: no message with UID {uid} in {app.cfg.mailbox.quarantine_folder}", file=sys.stderr)
    print(f"{len(moved)} message(s) moved back to {app.cfg.mailbox.folder}; the daemon handles them on its next pass")
    return 1 if missing else 0


def spam_command(app, args) -> int:
    """`spam list`: what the last pass found in spam and left there. `spam rescue UID`: move it
    to the inbox, where the daemon's next pass (or `once`) handles it like any other mail."""
    from maildesk.daemon import Daemon
    from maildesk.adapters.imap_types import MailboxError
    if args.action == "list":
        doc = digest.spam(app.store, listed=1000)
        if args.json:
            print_json(doc)
            return 0
        for m in doc["listed"]:
            print(f"uid {m['uid']:<6} {local(m['at'], app.cfg.tz)}  {m['sender']}  {digest.one_line(m['subject'], 60)!r}")
        print(f"{doc['count']} message(s) in {doc['folder'] or 'the spam folder'}, none answered"
              + ("; to have one handled: maildesk spam rescue UID" if doc["count"] else ""))
        return 0
    if args.uid is None:
        print("maildesk: name the UID to rescue (see `maildesk spam list`)", file=sys.stderr)
        return 2
    if app.cfg.mailbox.read_only:
        print("maildesk: mailbox.read_only is set: nothing can be moved", file=sys.stderr)
        return 1
    daemon = Daemon(app)
    daemon.inbox = app.make_inbox()
    try:
        daemon.connect()
        folder = daemon.inbox.junk_folder_name()
        if not folder:
            print("maildesk: no spam folder (mailbox.junk_folder)", file=sys.stderr)
            return 1
        _validity, uids, _new = daemon.inbox.read_headers(folder, set(), None)
        if args.uid not in uids:
            print(f"maildesk: no message with UID {args.uid} in {folder} (see `maildesk spam list`)", file=sys.stderr)
            return 1
        daemon.inbox.move_from(folder, [args.uid], app.cfg.mailbox.folder)
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    finally:
        daemon.inbox.close()
    print(f"UID {args.uid} moved from {folder} to {app.cfg.mailbox.folder}: the next pass handles it")
    return 0
