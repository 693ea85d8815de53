"""The command line's small promises (issue 14 items 6, 8, 10): help text for every option,
one time format on screen, and the placeholders `check` refuses. (A service user who cannot
reach the interpreter is tested on real folders: tests/integration/test_service_user_reach.py.)"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from maildesk.core import timefmt
from maildesk.cli.main import build_parser
from maildesk.config import placeholders
from tests.support import make_config


def _arguments(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _arguments(sub, [*path, name])
        elif action.dest != "help":
            yield " ".join(path), action


def test_every_option_and_argument_has_help_text():
    missing = [f"{where} {a.option_strings or a.dest}" for where, a in _arguments(build_parser(), ["maildesk"])
               if not a.help]
    assert missing == []


def test_one_format_for_times_on_screen():
    moment = datetime(2026, 11, 24, 8, 12, tzinfo=timezone.utc)
    assert timefmt.local(moment, ZoneInfo("Europe/Paris")) == "2026-11-24 09:12 +01:00"
    assert timefmt.local("2026-07-01T08:12:00+00:00", ZoneInfo("Europe/Paris")) == "2026-07-01 10:12 +02:00"
    assert timefmt.local(moment, ZoneInfo("America/St_Johns")) == "2026-11-24 04:42 -03:30"
    assert timefmt.local(None, ZoneInfo("UTC")) == "-"
    assert timefmt.zone(moment, ZoneInfo("Europe/Paris")) == "Europe/Paris, +01:00"


def test_placeholders_name_each_key_once():
    cfg = make_config(teams={"customer_service": ["cs@imolocale.test"], "resolution": ["a@x.example", "b@X.EXAMPLE"]},
                      smtp={"from_address": "support@sub.example.org"},
                      staff={"lea": {"address": "lea@example.net"}})
    assert placeholders(cfg) == [
        "smtp.from_address holds support@sub.example.org: a placeholder (example domain), not a real address; "
        "put the real one",
        "teams.resolution holds a@x.example, b@X.EXAMPLE: a placeholder (example domain), not a real address; "
        "put the real one",
        "[staff] holds lea@example.net: a placeholder (example domain), not a real address; put the real one"]
    assert placeholders(make_config()) == []  # .test and real-looking domains pass
    assert placeholders(make_config(teams={"customer_service": []})) == [
        "teams.customer_service is empty: new complaints would notify nobody"]
