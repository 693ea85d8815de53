"""`maildesk export`: complaints first contacted between two days as CSV (for a spreadsheet:
UTF-8 with a BOM, `--separator ';'` for French ones, formula cells neutralised) or JSON. Reads
the store only (opened read-only, as `list` does); the columns are core/export.py's."""
from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from maildesk.clock import utcnow
from maildesk.core import export
from maildesk.store import exports


class ExportRefused(Exception):
    """Bad input to `export`: one line for the admin."""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="complaints as CSV or JSON for a spreadsheet (no message bodies)")
    p.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="first contact on or after this day (local time)")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="first contact on or before this day (default: today)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    p.add_argument("--separator", default=",", help="CSV separator: ',' (default), ';' (French spreadsheets, "
                   "with a decimal comma) or 'tab'")
    p.add_argument("--out", dest="file", metavar="FILE", help="write to FILE instead of the standard output")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ExportRefused(f"{option} wants a date like 2026-11-01, not {text!r}") from None


def window(args, tz, now: datetime) -> tuple[datetime, datetime]:
    """[since 00:00, the day after until 00:00) in local time."""
    since = _day(args.since, "--since")
    until = _day(args.until, "--until") if args.until else now.astimezone(tz).date()
    if until < since:
        raise ExportRefused(f"--until {until} is before --since {since}")
    start = datetime.combine(since, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end


def separator(text: str) -> str:
    sep = "\t" if text in ("tab", "\\t") else text
    if len(sep) != 1 or sep in "\"'\r\n" or sep.isalnum():
        raise ExportRefused(f"--separator must be one character such as ',' or ';' (or 'tab'), not {text!r}")
    return sep


def render(rows: list[dict], fmt: str, sep: str, tz) -> bytes:
    if fmt == "json":
        return (json.dumps([export.json_row(r) for r in rows], ensure_ascii=False, indent=1) + "\n").encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\r\n")
    writer.writerow(export.COLUMNS)
    for r in rows:
        writer.writerow(export.csv_cells(r, tz, decimal_comma=sep == ";"))
    return buffer.getvalue().encode("utf-8-sig")  # the BOM: spreadsheets then read UTF-8


def export_command(app, args) -> int:
    try:
        sep = separator(args.separator)
        now = utcnow()
        since, until = window(args, app.cfg.tz, now)
        out = Path(args.file) if args.file else None
        if out is not None and not out.parent.is_dir():
            raise ExportRefused(f"cannot write {out}: folder {out.parent} does not exist")
    except ExportRefused as e:
        print(f"maildesk export: {e}", file=sys.stderr)
        return 2
    rows = [export.row(c, now, app.cfg) for c in exports.complaints_between(app.store, since, until)]
    data = render(rows, args.format, sep, app.cfg.tz)
    if out is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            out.write_bytes(data)
        except OSError as e:
            print(f"maildesk export: cannot write {out}: {e.strerror}", file=sys.stderr)
            return 1
        print(f"{len(rows)} complaint(s) written to {out}", file=sys.stderr)
    return 0
