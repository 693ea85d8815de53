"""The `maildesk seller ...` and `maildesk link` commands: parse, call the
registry or the seller desk in one transaction, send, print. No rules here."""
from __future__ import annotations

import getpass
import json
import sys
from dataclasses import asdict
from datetime import datetime

from maildesk.core import sellers, timefmt
from maildesk.cli.display import dumps, shown
from maildesk.cli.report import reference
from maildesk.service.seller_import import ImportFileError, import_rows, read_rows
from maildesk.clock import utcnow
from maildesk.store import webhooks



def login_name() -> str:
    """Who runs the command, for the audit trail (`resolve`, `link`, `seller ...`)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): still record something
        return "cli"


def add_parsers(sub) -> None:
    seller = sub.add_parser("seller", help="the seller registry: import, list, show, restrict, terminate, reinstate")
    ssub = seller.add_subparsers(dest="seller_command", required=True, metavar="ACTION")
    imp = ssub.add_parser("import", help="add or update sellers from a CSV or JSON file")
    imp.add_argument("file", help="a CSV or JSON file (see config/sellers.sample.csv)")
    imp.add_argument("--by", default=None, help="who imported (for the history; default: your login)")
    lst = ssub.add_parser("list", help="registered sellers")
    lst.add_argument("--status", choices=sellers.STATUSES, help="only sellers with this status")
    lst.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")
    show = ssub.add_parser("show", help="a seller, their cooperation record and history")
    show.add_argument("id", help="the seller's id or address")
    show.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")
    for name, what in (("restrict", "restrict a seller's account"), ("terminate", "terminate a seller's account"),
                       ("reinstate", "lift a flag, restriction or termination")):
        p = ssub.add_parser(name, help=f"{what}; the seller is told by mail")
        p.add_argument("id", help="the seller's id or address")
        p.add_argument("--reason", required=True, help="told to the seller and recorded")
        p.add_argument("--by", default=None, help="who decided (default: your login)")
    link = sub.add_parser("link", help="link a complaint to a seller and write to the seller")
    link.add_argument("ref", help="the complaint's reference")
    link.add_argument("seller", help="seller id or address")
    link.add_argument("--facts", default="", help="what the seller is told about the complaint")
    link.add_argument("--by", default=None, help="who linked it (default: your login)")


def cmd_seller(app, args) -> int:
    return {"import": _import, "list": _list, "show": _show, "restrict": _decide, "terminate": _decide,
            "reinstate": _decide}[args.seller_command](app, args)


def _describe_delivery(row, tz) -> str:
    return (f"{row['event']} (created {timefmt.local(row['created_at'], tz)}, {row['attempts']} attempt(s)"
            + (f", last: {row['last_error']}" if row["last_error"] else "")
            + f", next {timefmt.local(row['next_attempt_at'], tz)})")


def _import(app, args) -> int:
    try:
        rows = read_rows(args.file)
    except ImportFileError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    reserved = {app.cfg.support_address, *app.cfg.staff}
    with app.store.transaction():
        report = import_rows(app.workflow.sellers.registry, rows, utcnow(), args.by or login_name(), reserved)
    print("\n".join(shown(line) for line in report.lines()))
    return 1 if report.rejected else 0


def _list(app, args) -> int:
    rows = [dict(r) for r in app.workflow.sellers.registry.all(args.status)]
    if args.json:
        print(dumps(rows))
        return 0
    for r in rows:
        print(shown(f"{r['id']:<12} {r['status']:<11} {r['shop_name'][:30]:<30} {r['address']}"))
    print(f"{len(rows)} seller(s)")
    return 0


def seller_doc(app, seller_id: str, now: datetime) -> dict | None:
    registry = app.workflow.sellers.registry
    seller = registry.get(seller_id)
    if seller is None:
        return None
    s = app.cfg.sellers
    return {
        "seller": dict(seller),
        "cooperation": {"count": registry.cooperation_count(seller["id"], now, s.window_days),
                        "window_days": s.window_days, "flag_after": s.flag_after},
        "strikes": [dict(r) for r in registry.strikes(seller["id"])],
        "complaints": [dict(r) for r in registry.complaints(seller["id"])],
        "outreach": [dict(r) for r in registry.outreaches(seller_id=seller["id"])],
        "webhooks_pending": [asdict(r) for r in webhooks.pending(app.store, seller["id"])],
        "history": [{**dict(r), "detail": json.loads(r["detail"])} for r in registry.history(seller["id"])],
    }


def format_seller(doc: dict, tz) -> str:
    def local(text):
        return timefmt.local(text, tz)
    s, coop = doc["seller"], doc["cooperation"]
    lines = [f"{s['id']}  {s['shop_name']}",
             f"  address : {s['address']}",
             f"  phone   : {s['phone'] or '-'}",
             f"  status  : {s['status']}"
             + (f" since {local(s['status_at'])} by {s['status_by']}: {s['status_reason']}" if s["status_at"] else ""),
             f"  cooperation: {coop['count']} strike(s) in the last {coop['window_days']:g} days "
             f"(flagged at {coop['flag_after']})",
             "", "Complaints:"]
    lines += [f"  {c['ref']:<11} {c['status']:<16} L{c['level']}  first contact {local(c['first_contact'])}"
              for c in doc["complaints"]] or ["  -"]
    lines += ["", "Outreach:"]
    for o in doc["outreach"]:
        lines.append(f"  {o['ref']:<11} {o['status']:<9} sent {local(o['sent_at'])}  due {local(o['due_at'])}"
                     + (f"  reminded {local(o['reminded_at'])}" if o["reminded_at"] else "")
                     + (f"  answered {local(o['answered_at'])}" if o["answered_at"] else "")
                     + (f"  failed ({o['failed_reason']})" if o["failed_at"] else ""))
    if not doc["outreach"]:
        lines.append("  -")
    lines += ["", "Strikes:"]
    lines += [f"  {local(k['at'])}  {k['kind']:<10} {k['ref'] or '':<11} {k['reason'] or ''}".rstrip()
              for k in doc["strikes"]] or ["  -"]
    if doc["webhooks_pending"]:
        lines += ["", "Web hook deliveries pending:"]
        lines += [f"  {_describe_delivery(w, tz)}" for w in doc["webhooks_pending"]]
    lines += ["", "History:"]
    for e in doc["history"]:
        facts = " ".join(f"{k}={v}" for k, v in e["detail"].items() if v not in (None, "") and k != "ref")
        lines.append(f"  {local(e['at'])}  {e['kind']:<17} {e['ref'] or '-':<11} {e['actor']:<20} {facts}".rstrip())
    return "\n".join(shown(line) for line in lines)


def _show(app, args) -> int:
    doc = seller_doc(app, args.id, utcnow())
    if doc is None:
        print(f"maildesk: no seller {shown(args.id)}", file=sys.stderr)
        return 1
    if args.json:
        print(dumps(doc))
    else:
        print(format_seller(doc, app.cfg.tz))
    return 0


def _decide(app, args) -> int:
    now = utcnow()
    by = args.by or login_name()
    try:
        with app.store.transaction():
            result = app.workflow.sellers.sanctions.decide(args.id, args.seller_command, args.reason, by, now)
    except KeyError:
        print(f"maildesk: no seller {shown(args.id)}", file=sys.stderr)
        return 1
    except sellers.DecisionError as e:
        print(f"maildesk: {shown(args.id)}: {shown(e)}", file=sys.stderr)
        return 1
    app.outbox.flush(now)
    print(shown(f"{result['seller']} ({result['shop_name']}): {result['previous']} -> {result['status']}, "
                f"decided by {by}. The seller was told by mail."
                + (" The web hook will be called." if result["webhook"] else "")))
    return 0


def cmd_link(app, args) -> int:
    now = utcnow()
    with app.store.transaction():
        complaint = app.store.complaint(reference(app.cfg, args.ref))
        if complaint is None:
            print(f"maildesk: no complaint {shown(args.ref)}", file=sys.stderr)
            return 1
        error = app.workflow.sellers.link(complaint, args.seller, args.by or login_name(), now, args.facts)
    if error:
        print(f"maildesk: {shown(error.removeprefix('#seller: '))}", file=sys.stderr)
        return 1
    app.outbox.flush(now)
    seller = app.workflow.sellers.registry.find(args.seller)
    print(shown(f"{complaint['ref']} linked to {seller['id']} ({seller['shop_name']}); the seller was written to."))
    return 0


COMMANDS = {"seller": cmd_seller, "link": cmd_link}
