"""`maildesk digest`: print the admins' digest as of a date (text, HTML or JSON), or send it now."""
from __future__ import annotations

import sys
from datetime import date

from maildesk.cli.common import print_json
from maildesk.cli.display import shown
from maildesk.clock import utcnow
from maildesk.service import digest


def add_parser(sub) -> None:
    dg = sub.add_parser("digest", help="the admins' daily digest: print it (default) or send it now")
    what = dg.add_mutually_exclusive_group()
    what.add_argument("--print", action="store_true", help="print the text version (default)")
    what.add_argument("--send", action="store_true", help="queue it for [digest] to and send it now")
    dg.add_argument("--date", help="the digest as of send_at that day (YYYY-MM-DD, local time)")
    dg.add_argument("--html", action="store_true", help="print the HTML version instead")
    dg.add_argument("--json", action="store_true", help="print the numbers as JSON")


def digest_command(app, args) -> int:
    now = utcnow()
    if args.send:
        with app.store.transaction():
            message_id = digest.queue(app.workflow, app.cfg, now)
        if message_id is None:
            print("maildesk: nobody to send the digest to: set [digest] to or [teams] admins", file=sys.stderr)
            return 1
        result = app.outbox.flush(now)
        if args.json:
            print_json({"sent": bool(result.sent), "to": digest.recipients(app.cfg), "message_id": message_id})
            return 0
        state = "sent" if result.sent else "queued (the daemon sends it when the server answers)"
        print(f"digest {state} to {', '.join(digest.recipients(app.cfg))}")
        return 0
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            day = None
        if day is None or not 1970 <= day.year < 9999:  # the digest looks a week back and a day ahead
            print(f"maildesk: --date must look like 2026-11-24 (1970 to 9998), got {args.date!r}", file=sys.stderr)
            return 2
        now = min(digest.moment_for(app.cfg, day), now)
    doc = digest.build(app.store, app.cfg, now)
    if args.json:
        print_json(doc)
        return 0
    rendered = digest.render(app.templates, app.cfg, doc)
    text = rendered.html if args.html else f"Subject: {rendered.subject}\n\n{rendered.text}"
    print("\n".join(shown(line) for line in text.split("\n")), end="")
    return 0
