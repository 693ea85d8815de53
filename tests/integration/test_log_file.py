"""The log file [logging] file names rotates by size and keeps whole lines."""
from __future__ import annotations

import io

import pytest

from maildesk import logs
from tests.support import make_config
from tests.unit.test_logs import LINE


@pytest.fixture(autouse=True)
def reset():
    yield
    logs.configure(None, stream=io.StringIO())


def test_log_file_rotates_by_size(tmp_path):
    cfg = make_config(tmp_path, logging={"file": "var/maildesk.log", "max_bytes": 2000, "backup_count": 2})
    logs.configure(cfg, stream=io.StringIO())
    for i in range(200):
        logs.event("mail_sent", f"IMO-{i:06d}", kind="ack")
    log_dir = tmp_path / "var"
    assert sorted(p.name for p in log_dir.iterdir()) == ["maildesk.log", "maildesk.log.1", "maildesk.log.2"]
    for path in log_dir.iterdir():
        assert path.stat().st_size <= 2000
        assert all(LINE.match(line) for line in path.read_text().splitlines())
