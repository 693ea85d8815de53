"""OAuth2 against a local token endpoint (real HTTP, real JSON) and a real
SMTP server that checks XOAUTH2; `maildesk auth gmail` end to end."""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from freezegun import freeze_time

from maildesk.adapters import oauth2, probe
from maildesk.app import App
from maildesk.config import ConfigError
from maildesk.adapters.imap_types import LoginRefused
from maildesk.testing.localstack import free_port
from tests.oauth_stub import TokenServer
from tests.outbox_rows import queue_mail
from tests.support import ROOT, SUPPORT

ENV = {"MAILDESK_TEST_SECRET": "client-secret", "MAILDESK_TEST_REFRESH": "1//refresh-ok"}


@pytest.fixture
def tokens():
    with TokenServer() as server:
        yield server


def names(records) -> list[str]:
    return [getattr(r, "event", r.getMessage()) for r in records]


def source(tokens: TokenServer) -> oauth2.TokenSource:
    return oauth2.TokenSource("cid", "client-secret", "1//refresh-ok", tokens.token_uri, env_name="MAILDESK_TEST_REFRESH")


def oauth_section(tokens: TokenServer) -> dict:
    return {"client_id": "cid.apps.googleusercontent.com", "client_secret_env": "MAILDESK_TEST_SECRET",
            "refresh_token_env": "MAILDESK_TEST_REFRESH", "token_uri": tokens.token_uri}


def test_refresh_grant_is_posted_and_the_token_cached(tokens):
    get = source(tokens)
    assert get() == "ya29.test-1"
    assert get() == "ya29.test-1"
    assert tokens.requests == [{"grant_type": "refresh_token", "client_id": "cid",
                                "client_secret": "client-secret", "refresh_token": "1//refresh-ok"}]


def test_token_is_refreshed_five_minutes_before_it_expires(tokens):
    tokens.expires_in = 3600
    with freeze_time("2026-11-24 08:00:00") as frozen:
        get = source(tokens)
        assert get() == "ya29.test-1"
        frozen.tick(timedelta(minutes=54, seconds=59))
        assert get() == "ya29.test-1" and len(tokens.requests) == 1
        frozen.tick(timedelta(seconds=2))  # 55 min 1 s: inside the last 5 minutes
        assert get() == "ya29.test-2" and len(tokens.requests) == 2
        frozen.tick(timedelta(minutes=30))
        assert get() == "ya29.test-2" and len(tokens.requests) == 2


def test_revoked_token_is_one_clear_error_logged_once(tokens, events):
    tokens.revoke()
    get = source(tokens)
    for _ in range(3):  # the daemon retries with back-off
        with pytest.raises(oauth2.TokenError) as err:
            get()
    message = str(err.value)
    assert "invalid_grant" in message and "maildesk auth gmail" in message and "MAILDESK_TEST_REFRESH" in message
    assert isinstance(err.value, LoginRefused)  # the daemon's back-off path
    assert len(tokens.requests) == 3
    assert names(events).count("oauth2_refresh_failed") == 1
    [record] = [r for r in events if names([r]) == ["oauth2_refresh_failed"]]
    assert record.levelno == logging.ERROR
    tokens.fail = None  # a new refresh token, or Google back
    assert get() == "ya29.test-1"
    assert names(events).count("oauth2_refresh_recovered") == 1
    assert "1//refresh-ok" not in " ".join(str(r.__dict__) for r in events)  # secrets never logged


def test_outage_keeps_using_a_token_that_is_still_valid(tokens, events):
    with freeze_time("2026-11-24 08:00:00") as frozen:
        get = source(tokens)
        assert get() == "ya29.test-1"
        frozen.tick(timedelta(minutes=57))  # refresh due, token still valid 2 more minutes
        tokens.fail = (503, {"error": "backend_error"})
        assert get() == "ya29.test-1"
        frozen.tick(timedelta(minutes=3))  # expired now
        with pytest.raises(oauth2.TokenError, match="keeps retrying"):
            get()
    assert names(events).count("oauth2_refresh_failed") == 1


def test_unreachable_token_endpoint_is_a_temporary_error():
    get = oauth2.TokenSource("cid", "s", "r", f"http://127.0.0.1:{free_port()}/token", timeout=5)
    with pytest.raises(oauth2.TokenError, match="cannot be reached.*keeps retrying") as err:
        get()
    assert "maildesk auth gmail" not in str(err.value)


def test_app_wires_one_token_source_into_inbox_and_outbox(tmp_path, tokens):
    from tests.support import make_config
    cfg = make_config(tmp_path, oauth2=oauth_section(tokens))
    app = App(cfg, env=ENV)
    try:
        assert app.outbox.token_source is app.token_source is app.make_inbox().token_source
        assert app.token_source() == "ya29.test-1"
    finally:
        app.close()
    with pytest.raises(ConfigError, match="oauth2.refresh_token_env names MAILDESK_TEST_REFRESH.*maildesk auth gmail"):
        App(cfg, env={"MAILDESK_TEST_SECRET": "x"}).token_source  # read when first needed


class XOAuth2Sink:
    """aiosmtpd that accepts AUTH XOAUTH2 only for the exact string Google documents."""

    def __init__(self, expected: set[str]):
        self.expected = expected
        self.auth_seen: list[str] = []
        self.messages: list[bytes] = []

    async def auth_XOAUTH2(self, server, args):
        blob = base64.b64decode(args[1]).decode()
        self.auth_seen.append(blob)
        return AuthResult(success=blob in self.expected, handled=False)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 2.0.0 OK"


def test_outbox_signs_in_to_smtp_with_xoauth2(tmp_path, tokens):
    from tests.support import make_config
    handler = XOAuth2Sink({oauth2.xoauth2_string(SUPPORT, "ya29.test-1")})
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    cfg = make_config(tmp_path, smtp_port=port, smtp={"username": SUPPORT}, oauth2=oauth_section(tokens))
    app = App(cfg, env=ENV)
    try:
        queue_mail(app)
        result = app.outbox.flush(datetime.now(timezone.utc))
        assert result.sent == 1 and len(handler.messages) == 1
        assert handler.auth_seen == [f"user={SUPPORT}\x01auth=Bearer ya29.test-1\x01\x01"]
        tokens.revoke()  # token cached: no refresh needed, still sends
        queue_mail(app)
        assert app.outbox.flush(datetime.now(timezone.utc)).sent == 1
        app.token_source.token = None  # force a refresh against the revoked grant
        queue_mail(app)
        result = app.outbox.flush(datetime.now(timezone.utc))
        assert result.retry == 1 and result.sent == 0  # kept, retried later, never dropped
        [row] = app.store.all("SELECT status, last_error FROM outbox WHERE status = 'queued'")
        assert "maildesk auth gmail" in row["last_error"]
    finally:
        app.close()
        controller.stop()


def test_check_and_the_daemon_sign_in_to_smtp_as_the_same_user_without_an_smtp_username(tmp_path, tokens):
    """OAuth2 and no [smtp] username: both use the mailbox's user (once, `check` said `None`)."""
    from tests.support import make_config
    handler = XOAuth2Sink({oauth2.xoauth2_string(SUPPORT, "ya29.test-1")})
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    cfg = make_config(tmp_path, smtp_port=port, oauth2=oauth_section(tokens))
    assert cfg.smtp.username is None
    app = App(cfg, env=ENV)
    try:
        checked = probe.smtp(cfg, None, app.token_source, timeout=5)
        queue_mail(app)
        assert app.outbox.flush(datetime.now(timezone.utc)).sent == 1
    finally:
        app.close()
        controller.stop()
    assert checked.ok and f"signed in as {SUPPORT} (OAuth2)" in checked.detail
    assert handler.auth_seen == [f"user={SUPPORT}\x01auth=Bearer ya29.test-1\x01\x01"] * 2


def test_once_with_a_revoked_token_says_what_to_do(desk, tokens):
    desk.write_config(oauth2=oauth_section(tokens))
    tokens.revoke()
    result = desk.cli("once", env=ENV)
    assert result.returncode == 1
    assert "Gmail refused the OAuth2 refresh token" in result.stderr
    assert "re-run `maildesk auth gmail`" in result.stderr and "MAILDESK_TEST_REFRESH" in result.stderr
    assert result.stderr.count("oauth2_refresh_failed") == 1


def test_auth_gmail_prints_the_refresh_token(desk, tokens):
    desk.write_config(oauth2=oauth_section(tokens))
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(desk.config), "auth", "gmail"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(ROOT), env={**os.environ, "MAILDESK_TEST_SECRET": "client-secret"})
    url = ""
    while not url:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("https://accounts.google.com/o/oauth2/v2/auth?"):
            url = line.strip()
    q = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}
    assert q["scope"] == "https://mail.google.com/" and q["access_type"] == "offline" and q["prompt"] == "consent"
    # what the browser's address bar shows after consent
    redirected = f"{q['redirect_uri']}?state={q['state']}&code={urllib.parse.quote(tokens.code)}&scope=x"
    out, err = proc.communicate(redirected + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "1//refresh-ok" in out and "MAILDESK_TEST_REFRESH" in out
    [exchange] = tokens.requests
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == tokens.code
    assert exchange["redirect_uri"] == q["redirect_uri"] and exchange["client_secret"] == "client-secret"
    verifier_hash = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(verifier_hash).rstrip(b"=").decode() == q["code_challenge"]


def test_auth_gmail_with_a_wrong_code_fails_clearly(desk, tokens):
    desk.write_config(oauth2=oauth_section(tokens))
    result = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(desk.config), "auth", "gmail"],
                            input="4/not-the-code\n", capture_output=True, text=True, cwd=str(ROOT), timeout=60,
                            env={**os.environ, "MAILDESK_TEST_SECRET": "client-secret"})
    assert result.returncode == 1
    assert "the code was not accepted" in result.stderr and "invalid_grant" in result.stderr
