"""Login hints that match what the server said (issue 13 item 8), with Gmail's own refusals."""
from __future__ import annotations

import aiosmtplib
import pytest
from imapclient.exceptions import LoginError

from maildesk.adapters import probe
from tests.support import make_config

GMAIL = make_config(mailbox={"host": "imap.gmail.com", "password": None, "password_env": "MAILDESK_IMAP_PASSWORD"})


@pytest.mark.parametrize("error, kind, words", [
    (LoginError(b"[AUTHENTICATIONFAILED] Invalid credentials (Failure)"), "auth", "app password"),
    (LoginError(b"[ALERT] Application-specific password required: "
                b"https://support.google.com/accounts/answer/185833 (Failure)"), "auth", "app password"),
    (LoginError(b"[ALERT] Too many simultaneous connections. (Failure)"), "connections", "about 15"),
    (LoginError(b"[ALERT] Account exceeded command or bandwidth limits. (Failure)"), "bandwidth", "2,500 MB"),
    (LoginError(b"[ALERT] Please log in via your web browser: "
                b"https://support.google.com/mail/accounts/answer/78754 (Failure)"), "web_login", "browser"),
    (LoginError(b"[ALERT] Your account is not enabled for IMAP use. (Failure)"), "imap_disabled", "Enable IMAP"),
    (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Too many login attempts, please try again later."),
     "throttled", "too many logins"),
])
def test_the_hint_follows_the_servers_refusal(error, kind, words):
    assert probe.kind_of(error) == kind
    assert words in probe.hint("mailbox", GMAIL.mailbox, kind)


def test_only_a_refused_password_asks_for_an_app_password():
    hint = probe.hint("mailbox", GMAIL.mailbox, probe.kind_of(LoginError(b"[ALERT] Too many simultaneous connections.")))
    assert "app password" not in hint and "password is fine" in hint
