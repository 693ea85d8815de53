"""`maildesk dossier REF --out FILE.html`: the dated record of one written complaint, as proof for
the consumer mediator (service/dossier.py). Reads the database only; writes FILE."""
from __future__ import annotations

import sys
from pathlib import Path

from maildesk.cli.report import reference
from maildesk.clock import utcnow
from maildesk.service import dossier


def add_parser(sub) -> None:
    do = sub.add_parser("dossier", help="write the dated record of a written complaint (proof for the mediator) as HTML")
    do.add_argument("ref", help="the complaint's reference")
    do.add_argument("--out", required=True, help="the HTML file to write (e.g. IMO-4K7M2Q.html)")
    do.add_argument("--lang", choices=("fr", "en"), help="language (default: the customer's)")


def dossier_command(app, args) -> int:
    ref = reference(app.cfg, args.ref)
    html = dossier.render(app.workflow, ref, utcnow(), args.lang)
    if html is None:
        print(f"maildesk: no complaint {args.ref}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as e:
        print(f"maildesk: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"{ref}: dossier written to {out}")
    return 0
