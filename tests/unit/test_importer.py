"""When an imported message arrived: its Date header, else a fallback."""
from __future__ import annotations

from datetime import datetime, timezone

from maildesk.service.importer import arrival

FALLBACK = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


def test_date_header_with_a_zone():
    raw = b"From: a@example.fr\r\nDate: Sat, 01 Mar 2025 10:30:00 +0100\r\n\r\nbody"
    assert arrival(raw, FALLBACK) == datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)


def test_date_without_a_zone_is_taken_as_utc():
    raw = b"Date: Sat, 01 Mar 2025 10:30:00 -0000\r\n\r\nbody"
    assert arrival(raw, FALLBACK) == datetime(2025, 3, 1, 10, 30, tzinfo=timezone.utc)


def test_missing_or_broken_date_falls_back():
    assert arrival(b"Subject: x\r\n\r\nbody", FALLBACK) == FALLBACK
    assert arrival(b"Date: yesterday-ish\r\n\r\nbody", FALLBACK) == FALLBACK
    assert arrival(b"", FALLBACK) == FALLBACK
