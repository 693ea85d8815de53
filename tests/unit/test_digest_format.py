"""The digest's pure parts: how durations, long lists, subjects and bars read, and which
moment a date's digest is. No database: the figures are built in tests/integration/test_digest.py."""
from __future__ import annotations

from datetime import datetime, timezone

from maildesk.service import digest
from tests.support import make_config


def test_durations_read_well():
    assert [digest.duration(s) for s in (None, 59, 42 * 60, 5 * 3600 + 7 * 60, 2 * 86400 + 4 * 3600)] == [
        "—", "1 min", "42 min", "5 h 07", "2 j 04 h"]
    assert digest.duration(2 * 86400, "en") == "2 d 00 h"


def test_date_maps_to_send_at_local_time():
    cfg = make_config(digest={"send_at": "07:30"})
    assert digest.moment_for(cfg, datetime(2026, 7, 1).date()) == datetime(2026, 7, 1, 5, 30, tzinfo=timezone.utc)
    assert digest.moment_for(cfg, datetime(2026, 12, 1).date()) == datetime(2026, 12, 1, 6, 30, tzinfo=timezone.utc)


def test_a_shortlist_keeps_the_first_items_and_counts_them_all():
    short = digest.Shortlist(["a", "b"], 30)
    assert len(short) == 30 and list(short) == ["a", "b"] and short[1] == "b"


def test_one_line_folds_whitespace_and_cuts_with_an_ellipsis():
    assert digest.one_line("  Colis\n  perdu\t ") == "Colis perdu"
    assert digest.one_line(None) == ""
    assert digest.one_line("x" * 10, limit=5) == "xxxx…"
    assert digest.one_line("x" * 5, limit=5) == "xxxxx"


def test_bar_widths_keep_every_non_empty_level_visible():
    assert digest.bar_widths({1: 0, 2: 1, 3: 99}, 100, 30, least=3) == {1: 0, 2: 3, 3: 30}
    assert digest.bar_widths({1: 50, 2: 50, 3: 0}, 100, 30) == {1: 15, 2: 15, 3: 0}
