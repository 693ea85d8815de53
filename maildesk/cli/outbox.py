"""`maildesk outbox`: mail waiting or failed; put it back in line, or cancel it for good."""
from __future__ import annotations

import sys

from maildesk.cli.common import local, number, operator, print_json
from maildesk.cli.display import shown
from maildesk.clock import utcnow
from maildesk.service import digest
from maildesk.store import reports
from maildesk.store.db import from_iso


def add_parser(sub) -> None:
    ob = sub.add_parser("outbox", help="mail waiting or failed; retry or cancel it")
    ob.add_argument("action", nargs="?", choices=("list", "cancel"), default="list",
                    help="cancel ID --reason TEXT: stop a mail for good")
    ob.add_argument("id", nargs="?", type=int, metavar="ID", help="the mail to cancel (from the list)")
    ob.add_argument("--reason", help="why it is cancelled (kept on the mail and its complaint)")
    ob.add_argument("--failed", action="store_true", help="only mail that failed for good or was cancelled")
    again = ob.add_mutually_exclusive_group()
    again.add_argument("--retry", type=number, metavar="ID", help="put this mail back in line and send it now")
    again.add_argument("--all", action="store_true", help="retry every failed or waiting mail now")
    ob.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")


def outbox_command(app, args) -> int:
    now = utcnow()
    if args.action == "cancel":
        if args.id is None or not (args.reason or "").strip():
            print("maildesk: usage: maildesk outbox cancel ID --reason TEXT", file=sys.stderr)
            return 2
        who = operator()
        refused = app.outbox.cancel(args.id, args.reason.strip(), who, now)
        if refused:
            print(f"maildesk: {refused}", file=sys.stderr)
            return 1
        print(f"mail #{args.id} cancelled by {who}: it will not be sent")
        return 0
    if args.id is not None:
        print("maildesk: an ID goes with cancel (maildesk outbox cancel ID --reason TEXT) or --retry ID",
              file=sys.stderr)
        return 2
    if args.retry is not None or args.all:
        count = app.outbox.retry(now, args.retry)
        if not count and args.all:  # nothing to do is not a failure (cron, scripts)
            print("no waiting or failed mail: nothing to retry")
            return 0
        if not count:
            print(f"maildesk: no waiting or failed mail #{args.retry}", file=sys.stderr)
            return 1
        result = app.outbox.flush(now)
        pause = app.outbox.paused()
        print(f"{count} mail(s) put back in line: {result.sent} sent, {result.retry} will be retried, "
              f"{result.failed} failed again, {result.held} held by "
              + (f"the pause (Gmail's daily limit since {pause['since']}; next try {pause['next_probe']})"
                 if pause else "the daily limit"))
        return 0 if not result.failed else 1
    rows = reports.outbox_rows(app.store, "failed or cancelled" if args.failed else "waiting or failed")
    if args.json:
        print_json(rows)
        return 0
    tz = app.cfg.tz
    for r in rows:
        when = {"queued": "next try " + local(from_iso(r["next_attempt_at"]), tz),
                "cancelled": "cancelled " + local(from_iso(r["cancelled_at"]), tz)}.get(
                    r["status"], "gave up")
        print(shown(f"#{r['id']:<5} {r['status']:<9} {r['attempts']} tries  {when:<20} {r['audience']}:{r['kind']:<12} "
                    f"{', '.join(r['to'])}" + (f"  [{r['ref']}]" if r["ref"] else "")))
        print(f"{'':8}{shown(digest.one_line(r['subject'], 70))}")
        if r["status"] == "cancelled":
            print(f"{'':8}cancelled by {shown(r['cancelled_by'])}: {shown(digest.one_line(r['cancel_reason'], 100))}")
        if r["last_error"]:
            print(f"{'':8}error: {shown(digest.one_line(r['last_error'], 100))}")
    print(f"{len(rows)} mail(s) {'failed or cancelled' if args.failed else 'waiting or failed'}"
          + ("; retry with: maildesk outbox --retry ID (or --all); stop one with: maildesk outbox cancel ID "
             "--reason TEXT" if rows else ""))
    return 0
