"""The export's rows and cells (core/export.py): columns, times, deadlines, formula neutralising."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from maildesk.core import export
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
ROW = {"ref": "IMO-ABCDE2", "subject": "Colis", "first_contact": T0, "resolved_at": T0 + timedelta(hours=30),
       "closed_at": None, "first_staff_answer_at": T0 + timedelta(minutes=90), "level": 2, "status": "resolved",
       "category": "colis non reçu", "seller_id": "S-1", "rating": 5}


def test_a_row_has_every_column_times_deadlines_and_no_body():
    r = export.row(ROW, T0 + timedelta(days=10), CFG)
    assert tuple(r) == export.COLUMNS
    assert (r["first_response_hours"], r["resolution_hours"]) == (1.5, 30.0)
    assert (r["deadline_24h"], r["deadline_48h"], r["deadline_5d"]) == ("missed", "met", "met")
    assert r["seller"] == "S-1" and r["rating"] == 5


def test_an_open_complaint_has_no_resolution_time_and_its_deadlines_ahead_or_missed():
    r = export.row({**ROW, "status": "open", "resolved_at": None, "first_staff_answer_at": None},
                   T0 + timedelta(hours=36), CFG)
    assert (r["first_response_hours"], r["resolution_hours"]) == (None, None)
    assert (r["deadline_24h"], r["deadline_48h"], r["deadline_5d"]) == ("missed", "ahead", "ahead")


@pytest.mark.parametrize("text, safe", [("=1+1", "'=1+1"), ("+33 6 12", "'+33 6 12"), ("-2", "'-2"),
                                        ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("Colis", "Colis"),
                                        ("a=b", "a=b"), ("", "")])
def test_text_a_spreadsheet_would_run_gets_a_quote(text, safe):
    assert export.neutralise(text) == safe


def test_csv_cells_local_times_decimal_comma_and_neutralised_text():
    r = export.row({**ROW, "subject": "=cmd", "seller_id": "@x"}, T0 + timedelta(days=10), CFG)
    cells = dict(zip(export.COLUMNS, export.csv_cells(r, ZoneInfo("Europe/Paris"), decimal_comma=True)))
    assert cells["first_contact"] == "2026-11-23 10:00:00" and cells["closed_at"] == ""
    assert cells["first_response_hours"] == "1,5" and cells["level"] == "2"
    assert (cells["subject"], cells["seller"]) == ("'=cmd", "'@x")
    plain = dict(zip(export.COLUMNS, export.csv_cells(r, ZoneInfo("Europe/Paris"))))
    assert plain["first_response_hours"] == "1.5"


def test_json_rows_keep_text_as_is_and_times_in_utc():
    r = export.json_row(export.row({**ROW, "subject": "=cmd"}, T0, CFG))
    assert r["subject"] == "=cmd" and r["first_contact"] == "2026-11-23T09:00:00+00:00"
