"""`maildesk export` (issue 18 item 7): one row per complaint for a spreadsheet or a script,
as plain values. No message bodies and no customer address: the reference, the subject, dates,
level, status, category, seller, how long the first answer and the resolution took, each promised
deadline met or missed (`deadlines.outcomes`, as `show` says it) and the rating.

CSV cells are made safe for spreadsheets: text that starts with `=`, `+`, `-`, `@` (or a tab or
carriage return) would be read as a formula, so it gets a leading `'` (OWASP's CSV injection
advice). With `;` as separator (French spreadsheets) numbers get a decimal comma too.
"""
from __future__ import annotations

from datetime import datetime

from maildesk.core import deadlines

COLUMNS = ("reference", "subject", "first_contact", "resolved_at", "closed_at", "level", "status", "category",
           "seller", "first_response_hours", "resolution_hours", "deadline_24h", "deadline_48h", "deadline_5d",
           "rating")
_DEADLINES = {"resolution_team": "deadline_24h", "findings": "deadline_48h", "target": "deadline_5d"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds() / 3600, 2) if start and end else None


def row(c: dict, now: datetime, cfg) -> dict:
    """One complaint (a store row, times as datetimes) as the export's columns. The deadlines are
    met, missed or ahead as of `now`; times stay datetimes (the caller formats them)."""
    out = {"reference": c["ref"], "subject": c["subject"] or "", "first_contact": c["first_contact"],
           "resolved_at": c["resolved_at"], "closed_at": c["closed_at"], "level": c["level"],
           "status": c["status"], "category": c["category"], "seller": c["seller_id"],
           "first_response_hours": _hours(c["first_contact"], c["first_staff_answer_at"]),
           "resolution_hours": _hours(c["first_contact"], c["resolved_at"]), "rating": c["rating"]}
    for o in deadlines.outcomes(c["first_contact"], c["status"], c["resolved_at"], now, cfg):
        out[_DEADLINES[o.deadline]] = o.state
    return {name: out[name] for name in COLUMNS}


def neutralise(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cells(values: dict, tz, decimal_comma: bool = False) -> list[str]:
    """One row's CSV cells: times in `tz` as `2026-11-24 09:12:00` (what spreadsheets read as a
    date), numbers as numbers (with a decimal comma when asked), text neutralised."""
    cells = []
    for name in COLUMNS:
        value = values[name]
        if value is None:
            cells.append("")
        elif isinstance(value, datetime):
            cells.append(value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            cells.append(str(value).replace(".", ",") if decimal_comma else str(value))
        else:
            cells.append(neutralise(str(value)))
    return cells


def json_row(values: dict) -> dict:
    """One row for JSON: times in UTC ISO-8601, like every `--json`."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}
