"""`maildesk search TEXT`: complaints by their words (subjects, customers' mail, staff notes,
customer and seller names), best first, accent-insensitive. Read-only."""
from __future__ import annotations

import sys
from datetime import date, datetime

from maildesk.cli.common import local, number, print_json
from maildesk.cli.display import shown
from maildesk.store import search as queries
from maildesk.store.db import from_iso


def add_parser(sub) -> None:
    se = sub.add_parser("search", help="find complaints by their words (FTS5, ranked, accents ignored)")
    se.add_argument("text", nargs="+", help='words to look for ("recu" finds "reçu"); FTS5 syntax '
                                            "(OR, NOT, prefix*) works, anything else is read as plain words")
    se.add_argument("--since", help="only complaints first written on or after this day (YYYY-MM-DD, local time)")
    se.add_argument("--limit", type=number, default=20, help="at most this many complaints (default 20)")
    se.add_argument("--json", action="store_true", help="print the results as JSON")


def search_command(app, args) -> int:
    since = None
    if args.since:
        try:
            since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(), tzinfo=app.cfg.tz)
        except ValueError:
            print(f"maildesk: --since wants a date like 2026-11-24, not {args.since!r}", file=sys.stderr)
            return 2
    limit = args.limit
    if limit < 1:
        print(f"maildesk: --limit must be 1 or more, not {args.limit!r}", file=sys.stderr)
        return 2
    text = " ".join(args.text)
    hits = queries.search(app.store, text, since=since, limit=limit)
    if args.json:
        print_json([{"ref": h.ref, "score": round(-h.score, 6), "found_in": h.source, "snippet": h.snippet,
                     "status": h.status, "level": h.level, "first_contact": h.first_contact,
                     "customer_addr": h.customer_addr, "customer_name": h.customer_name, "subject": h.subject}
                    for h in hits])
        return 0
    for h in hits:
        print(shown(f"{h.ref:<11} L{h.level} {h.status:<16} {local(from_iso(h.first_contact), app.cfg.tz)}  "
                    f"{h.customer_addr:<30} {h.subject[:50]}"))
        print(shown(f"            {h.source}: {' '.join(h.snippet.split())}"))
    print(f"{len(hits)} complaint(s)")
    return 0
