"""`maildesk merge A B [--force] [--by NAME]`: what `#merge B` on complaint A does by mail
(service/merging.py), from the command line. One line saying what moved (exit 0), or the
reason it was refused (exit 1)."""
from __future__ import annotations

import sys

from maildesk.cli import report
from maildesk.cli.display import shown
from maildesk.cli.sellers import login_name
from maildesk.clock import utcnow


def add_parser(sub) -> None:
    p = sub.add_parser("merge", help="merge complaint SOURCE into TARGET: its messages and events move, "
                                     "SOURCE closes, its customer is told the new reference")
    p.add_argument("source", help="the complaint that stops, e.g. IMO-7Q2WRT")
    p.add_argument("target", help="the complaint that goes on, e.g. IMO-4K7M2Q")
    p.add_argument("--force", action="store_true", help="allow merging two different customers' complaints")
    p.add_argument("--by", default=None, help="who merged, for the audit trail (default: your login)")


def merge_command(app, args) -> int:
    now = utcnow()
    source, target = report.reference(app.cfg, args.source), report.reference(app.cfg, args.target)
    with app.store.transaction():
        row = app.store.complaint(source)
        if row is None:
            return _refused(f"{source} not merged: there is no complaint {source}")
        result = app.workflow.merger.merge(row, target, force=args.force, actor=args.by or login_name(), now=now)
    if not result.merged:
        return _refused(result.line())
    app.outbox.flush(now)
    print(result.line())
    return 0


def _refused(line: str) -> int:
    print(f"maildesk: {shown(line)}", file=sys.stderr)
    return 1


COMMANDS = {"merge": merge_command}
