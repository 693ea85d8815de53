"""A config read from a file, a secret from a file, and the CLI stopping on a bad or missing
config with one line (exit 2)."""
import pytest

from maildesk.config import ConfigError, read_secret
from tests.support import config_dict, make_config, write_config, maildesk


def test_secret_from_env_and_file(tmp_path):
    cfg = make_config(mailbox={"password": None, "password_env": "IMAP_PW"})
    assert read_secret("mailbox", cfg.mailbox, {"IMAP_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="IMAP_PW, which is not set"):
        read_secret("mailbox", cfg.mailbox, {})
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    cfg = make_config(mailbox={"password": None, "password_file": str(secret)})
    assert read_secret("mailbox", cfg.mailbox, {}) == "from-file"


def test_cli_stops_with_exit_2_and_one_line(tmp_path):
    data = config_dict()
    data["mailbox"]["port"] = "nine"
    path = write_config(tmp_path / "maildesk.toml", data)
    result = maildesk(path, "once")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "maildesk: config error: mailbox.port must be a whole number, got str 'nine'"]


def test_cli_missing_config_file(tmp_path):
    result = maildesk(tmp_path / "nope.toml", "once")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_the_shipped_config_is_valid(tmp_path):
    from maildesk.config import load
    from tests.support import ROOT
    cfg = load(ROOT / "maildesk.toml")
    assert cfg.mailbox.host == "imap.gmail.com" and cfg.smtp.port == 587
