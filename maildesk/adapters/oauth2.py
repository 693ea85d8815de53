"""Gmail sign-in with OAuth2: access tokens from a refresh token, and the
one-time `maildesk auth gmail` that obtains that refresh token.

An expired or revoked token is the usual reason a helpdesk stops reading
mail with nobody told, so a refusal becomes one error that says what to
do, logged once per outage (not on every retry). Only the stdlib is used
(urllib, with certificate verification as Python does it by default).
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from maildesk.config import ConfigError
from maildesk.adapters.imap_types import LoginRefused
from maildesk.logs import event as log_event

AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
SCOPE = "https://mail.google.com/"  # the only scope Gmail accepts for IMAP and SMTP
REDIRECT_URI = "http://127.0.0.1:53682/"  # loopback: nothing needs to listen, the code is in the address bar
REFRESH_EARLY = timedelta(minutes=5)
REAUTH = "re-run `maildesk auth gmail` and put the new refresh token in ${env}, then restart maildesk"


class TokenError(LoginRefused):
    """No access token: a LoginRefused, so the daemon backs off and retries as for a wrong password.

    `refused`: the endpoint said no (a person must act) rather than could not be reached."""

    def __init__(self, message: str, refused: bool = True):
        super().__init__(message)
        self.refused = refused


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, as Google documents it (IMAP AUTHENTICATE, SMTP AUTH)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_base64(user: str, token: str) -> str:
    """The same, base64-encoded: what goes on the wire after `AUTH XOAUTH2`."""
    return base64.b64encode(xoauth2_string(user, token).encode()).decode("ascii")


def post_form(uri: str, fields: dict, timeout: float = 30) -> dict:
    """POST a form to a token endpoint; the JSON answer, or TokenError saying why not.

    The error's `refused` attribute tells a refusal (needs a person) from an outage (retry)."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(uri, data=data, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        detail = _error_detail(e.read())
        raise TokenError(f"the token endpoint answered HTTP {e.code}{detail}", refused=400 <= e.code < 500) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TokenError(f"the token endpoint {uri} cannot be reached: {reason}", refused=False) from None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise TokenError("the token endpoint did not answer with JSON", refused=False)
    return doc


def _error_detail(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict) or "error" not in doc:
        return ""
    text = f" {doc['error']}"
    if doc.get("error_description"):
        text += f" ({doc['error_description']})"
    return text


class TokenSource:
    """Callable giving a valid access token: cached, refreshed 5 minutes before it expires.

    Shared by the inbox and the outbox. If a refresh fails while the cached
    token is still valid, the cached one is used and the failure logged."""

    def __init__(self, client_id: str, client_secret: str, refresh_token: str, token_uri: str,
                 env_name: str = "the refresh token's environment variable", timeout: float = 30,
                 marker: Path | None = None):
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_uri = token_uri
        self.env_name = env_name
        self.timeout = timeout
        self.token: str | None = None
        self.expires_at: datetime | None = None
        self.failing = False
        self.marker = marker  # [oauth2] dead_token_file: there while Google refuses the refresh token
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            now = datetime.now(timezone.utc)
            if self.token and now < self.expires_at - REFRESH_EARLY:
                return self.token
            try:
                doc = post_form(self.token_uri, {
                    "grant_type": "refresh_token", "client_id": self.client_id,
                    "client_secret": self.client_secret, "refresh_token": self.refresh_token}, self.timeout)
                token = doc.get("access_token")
                if not isinstance(token, str) or not token:
                    raise TokenError("the token endpoint answered without an access_token")
            except TokenError as e:
                error = self._explain(e)
                if not self.failing:
                    self.failing = True
                    log_event("oauth2_refresh_failed", severity=40, error=str(error))
                if e.refused and self.marker is not None:
                    _write_marker(self.marker, f"{now.isoformat(timespec='seconds')} {error}\n")
                if self.token and now < self.expires_at:
                    return self.token  # still good for a few minutes
                raise error from None
            if self.failing:
                self.failing = False
                log_event("oauth2_refresh_recovered")
            if self.marker is not None and self.marker.exists():
                self.marker.unlink(missing_ok=True)
            self.token = token
            self.expires_at = now + timedelta(seconds=_seconds(doc.get("expires_in")))
            return token

    def _explain(self, e: TokenError) -> TokenError:
        if e.refused:
            return TokenError(f"Gmail refused the OAuth2 refresh token ({e}): "
                              + REAUTH.replace("${env}", self.env_name))
        return TokenError(f"cannot get an OAuth2 access token: {e}; maildesk keeps retrying")


def _seconds(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 3600  # Google's usual lifetime


def token_source(cfg, env: Mapping[str, str]) -> TokenSource | None:
    """The TokenSource for `[oauth2]`, or None when the config uses passwords."""
    o = cfg.oauth2
    if o is None:
        return None
    secret = _env(env, "client_secret_env", o.client_secret_env)
    refresh = _env(env, "refresh_token_env", o.refresh_token_env,
                   hint=" (get one with `maildesk auth gmail`)")
    return TokenSource(o.client_id, secret, refresh, o.token_uri, env_name=o.refresh_token_env,
                       marker=cfg.resolve(o.dead_token_file))


def dead_token(cfg) -> str | None:
    """For `status`: why the refresh token is dead, from the marker file, or None."""
    if cfg.oauth2 is None:
        return None
    marker = cfg.resolve(cfg.oauth2.dead_token_file)
    try:
        return " ".join(marker.read_text(errors="replace").split())[:400] or "the OAuth2 refresh token was refused"
    except OSError:
        return None


def _write_marker(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as e:  # the log line stands; the marker is a convenience for monitoring
        log_event("oauth2_marker_failed", severity=40, path=str(path), error=str(e))


def _env(env: Mapping[str, str], key: str, name: str, hint: str = "") -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"oauth2.{key} names {name}, which is not set in the environment{hint}")
    return value


# --- `maildesk auth gmail`: the one-time consent ---------------------------------

def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): the code is useless to anyone who intercepts it."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def consent_url(client_id: str, redirect_uri: str, state: str, challenge: str,
                login_hint: str | None = None) -> str:
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
              "scope": SCOPE, "access_type": "offline", "prompt": "consent", "state": state,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    if login_hint:
        params["login_hint"] = login_hint
    return f"{AUTH_URI}?{urllib.parse.urlencode(params)}"


def code_from(pasted: str, state: str) -> str:
    """The authorization code from what the admin pasted: the whole address, or just the code."""
    text = pasted.strip()
    if "?" not in text and "=" not in text:
        return text
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(text).query or text)
    if "error" in query:
        raise ValueError(f"Google answered {query['error'][0]}: access was not granted")
    if query.get("state", [state])[0] != state:
        raise ValueError("this address belongs to another sign-in attempt (state does not match); start again")
    if "code" not in query:
        raise ValueError("no code= found in what was pasted")
    return query["code"][0]


def authorize(cfg, env: Mapping[str, str], stdin, stdout, stderr, redirect_uri: str = REDIRECT_URI) -> int:
    """Print the consent address, read the code back, print the refresh token. Exit status."""
    o = cfg.oauth2
    if o is None:
        print("maildesk: add an [oauth2] section (client_id, client_secret_env, refresh_token_env) "
              "to the config first; see README, \"Connect to Gmail\"", file=stderr)
        return 2
    try:
        secret = _env(env, "client_secret_env", o.client_secret_env)
    except ConfigError as e:
        print(f"maildesk: config error: {e}", file=stderr)
        return 2
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = consent_url(o.client_id, redirect_uri, state, challenge, cfg.mailbox.username)
    print(f"1. Open this address in a browser, signed in as {cfg.mailbox.username}:\n\n{url}\n\n"
          f"2. Allow access. The browser is then sent to {redirect_uri}... and shows an error\n"
          "   page because nothing listens there: that is expected.\n"
          "3. Copy the whole address from the browser's address bar and paste it here, then Enter:",
          file=stdout, flush=True)
    try:
        code = code_from(stdin.readline(), state)
    except ValueError as e:
        print(f"maildesk: {e}", file=stderr)
        return 1
    if not code:
        print("maildesk: nothing was pasted", file=stderr)
        return 1
    try:
        doc = post_form(o.token_uri, {"grant_type": "authorization_code", "code": code,
                                      "client_id": o.client_id, "client_secret": secret,
                                      "redirect_uri": redirect_uri, "code_verifier": verifier})
    except TokenError as e:
        print(f"maildesk: the code was not accepted: {e}", file=stderr)
        return 1
    refresh = doc.get("refresh_token")
    if not refresh:
        print("maildesk: Google sent no refresh token; remove maildesk's access at "
              "https://myaccount.google.com/permissions and run this again", file=stderr)
        return 1
    print(f"\nRefresh token:\n\n{refresh}\n\n"
          f"Put it in the environment variable {o.refresh_token_env} (and the client secret in "
          f"{o.client_secret_env}),\nfor example in the service's environment file, then restart maildesk. "
          "Keep it secret: it gives access to the mailbox.", file=stdout)
    return 0
