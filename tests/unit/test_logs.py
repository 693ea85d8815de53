"""Log lines an admin can tail and grep: time, level, event, reference, facts;
JSON that parses; the level from [logging]. (The rotating file: tests/integration/test_log_file.py.)"""
from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from maildesk import logs
from tests.support import make_config

CONFIG_DIR = Path("/srv/maildesk")  # the config's folder: no log file is configured, nothing is written

LINE = re.compile(r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d) (?P<level>DEBUG|INFO|WARNING|ERROR) '
                  r'(?P<event>[a-z_]+)(?: (?P<ref>[A-Z0-9]+-[0-9A-Z]{6}))?'
                  r'(?P<facts>(?: [a-z_]+=(?:"(?:[^"\\]|\\.)*"|\S+))*)$')


@pytest.fixture(autouse=True)
def reset():
    yield
    logs.configure(None, stream=io.StringIO())


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_text_lines_have_time_level_event_reference_and_facts():
    out = io.StringIO()
    logs.configure(make_config(CONFIG_DIR), stream=out)
    logs.event("escalated", "IMO-4K7M2Q", level=2, reason="24h")
    logs.event("started", pid=42, mode=None)
    logs.event("send_retry", "IMO-4K7M2Q", severity=logging.WARNING, error="451 try again\nlater", attempts=2)
    first, second, third = lines(out)
    m = LINE.match(first)
    assert m and m["level"] == "INFO" and m["event"] == "escalated" and m["ref"] == "IMO-4K7M2Q"
    assert m["time"].endswith(("+01:00", "+02:00"))  # local time of [policy] timezone, with its offset
    assert first.endswith(" escalated IMO-4K7M2Q level=2 reason=24h")
    assert LINE.match(second) and second.endswith(" INFO started pid=42")  # no ref, None facts left out
    m = LINE.match(third)
    assert m and m["level"] == "WARNING" and 'error="451 try again later"' in third  # one line, always


def test_severity_is_its_own_keyword_and_level_is_always_the_complaints():
    out = io.StringIO()
    logs.configure(make_config(CONFIG_DIR), stream=out)
    logs.event("escalated", "IMO-4K7M2Q", severity=logging.WARNING, level=3)
    logs.event("escalated", "IMO-4K7M2Q", level=40)  # a number is never taken for a severity
    first, second = lines(out)
    assert " WARNING escalated IMO-4K7M2Q level=3" in first
    assert " INFO escalated IMO-4K7M2Q level=40" in second


def test_json_lines_parse():
    out = io.StringIO()
    logs.configure(make_config(CONFIG_DIR, logging={"format": "json"}), stream=out)
    logs.event("complaint_opened", "IMO-4K7M2Q", customer="camille@example.fr", lang="fr")
    logs.event("quarantined", severity=logging.WARNING, uid=7, reason='bad "From"')
    docs = [json.loads(line) for line in lines(out)]
    assert docs[0]["event"] == "complaint_opened" and docs[0]["ref"] == "IMO-4K7M2Q" and docs[0]["level"] == "INFO"
    assert docs[1] == {"time": docs[1]["time"], "level": "WARNING", "event": "quarantined", "uid": "7",
                       "reason": 'bad "From"'}


def test_facts_named_like_secrets_are_never_written():
    out = io.StringIO()
    logs.configure(make_config(CONFIG_DIR), stream=out)
    logs.event("oops", password="hunter2", access_token="ya29.x", client_secret="s3", user="u")
    [line] = lines(out)
    assert "hunter2" not in line and "ya29" not in line and "s3" not in line
    assert "password=[redacted]" in line and "user=u" in line


def test_level_setting_hides_chatter():
    out = io.StringIO()
    logs.configure(make_config(CONFIG_DIR, logging={"level": "WARNING"}), stream=out)
    logs.event("mail_sent", kind="ack")
    logs.event("smtp_unreachable", severity=logging.ERROR, error="refused")
    assert [LINE.match(line)["event"] for line in lines(out)] == ["smtp_unreachable"]
