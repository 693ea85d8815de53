"""A bad config stops startup with one sentence naming the key."""
from pathlib import Path

import pytest

from maildesk.config import ConfigError, parse_config, read_secret
from tests.support import config_dict, make_config


def error_for(**changes) -> str:
    data = config_dict()
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if value is None:
            data[section].pop(key, None)
        else:
            data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as e:
        parse_config(data, base_dir=__import__("pathlib").Path("/tmp"))
    return str(e.value)


def test_defaults_are_the_policy_values():
    p = make_config().policy
    assert (p.escalate_to_resolution_hours, p.findings_due_hours, p.escalate_to_experience_hours,
            p.resolution_target_days, p.update_every_hours, p.satisfaction_wait_days) == (24, 48, 48, 5, 24, 3)
    assert make_config().mailbox.folder == "INBOX"


@pytest.mark.parametrize("changes,expected", [
    ({"mailbox__host": None}, "mailbox.host is required but missing"),
    ({"mailbox__port": "993"}, "mailbox.port must be a whole number"),
    ({"mailbox__idle": "yes"}, "mailbox.idle must be true or false"),
    ({"mailbox__security": "tls"}, 'mailbox.security must be "ssl", "starttls" or "none"'),
    ({"teams__resolution": "x@y"}, "teams.resolution must be a list of strings"),
    ({"teams__admins": ["not-an-address"]}, "teams.admins holds 'not-an-address'"),
    ({"policy__timezone": "Mars/Olympus"}, "policy.timezone 'Mars/Olympus' is not a known time zone"),
    ({"policy__language": "de"}, 'policy.language must be "fr" or "en"'),
    ({"smtp__from_address": "nobody"}, "smtp.from_address must be an e-mail address"),
    ({"mailbox__password_env": "X"}, "mailbox: set only one of password, password_env, password_file"),
])
def test_each_mistake_is_named(changes, expected):
    if "mailbox__password_env" in changes:
        cfg = make_config(mailbox={"password_env": "X"})
        with pytest.raises(ConfigError, match=expected):
            read_secret("mailbox", cfg.mailbox, {})
        return
    assert expected in error_for(**changes)


def test_unknown_keys_and_sections_are_named_not_refused():
    """A config written for a newer maildesk still loads after a rollback (issue 14 Build 5)."""
    data = config_dict()
    data["mailboxx"] = {}
    data["mailbox"]["hots"] = "x"
    cfg = parse_config(data, base_dir=__import__("pathlib").Path("/tmp"))
    assert cfg.unknown == ("[mailboxx]", "mailbox.hots")


def test_relative_database_path_is_relative_to_the_config_file():
    tmp_path = Path("/srv/maildesk")  # a path, never touched
    cfg = make_config(base_dir=tmp_path, storage={"database": "var/x.db"})
    assert cfg.database_path == tmp_path / "var" / "x.db"


@pytest.mark.parametrize("domain,expected", [
    ("Imolocale.fr", "not a domain name in lower case"),
    ("julie@imolocale.fr", "not a domain name"),
    ("localhost", "not a domain name"),
    ("gmail.com", "a public mail service"),
])
def test_staff_domains_are_bare_organisation_domains(domain, expected):
    """[teams] domains (issue 14 item 9): a public mail service would turn customers into colleagues."""
    assert expected in error_for(teams__domains=[domain])


def test_staff_domains_default_empty_and_match_subdomains():
    assert make_config().teams.domains == [] and not make_config().staff_domain("julie@imolocale.fr")
    cfg = make_config(teams={"domains": ["imolocale.fr"]})
    assert cfg.staff_domain("julie@imolocale.fr") and cfg.staff_domain("jo@eu.imolocale.fr")
    assert not cfg.staff_domain("eve@notimolocale.fr")
