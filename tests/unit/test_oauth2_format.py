"""XOAUTH2 strings, the consent address and pasted codes, against what Google documents."""
from __future__ import annotations

import base64
import hashlib
import urllib.parse

import pytest
from aiosmtplib.auth import auth_xoauth2_encode

from maildesk.adapters import oauth2

# developers.google.com/gmail/imap/xoauth2-protocol, "The SASL XOAUTH2 Mechanism"
GOOGLE_USER = "someuser@example.com"
GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
GOOGLE_B64 = ("dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
              "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")


def test_xoauth2_string_is_googles_documented_example():
    assert oauth2.xoauth2_string(GOOGLE_USER, GOOGLE_TOKEN) == \
        "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    assert oauth2.xoauth2_base64(GOOGLE_USER, GOOGLE_TOKEN) == GOOGLE_B64


def test_the_libraries_we_use_send_the_same_string():
    # SMTP: aiosmtplib's encoder (Outbox calls auth_xoauth2); IMAP: imapclient builds it inline the same way
    assert auth_xoauth2_encode(GOOGLE_USER, GOOGLE_TOKEN).decode() == GOOGLE_B64


def test_consent_url_asks_for_offline_gmail_access_with_pkce():
    verifier, challenge = oauth2.pkce_pair()
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    url = oauth2.consent_url("cid.apps.googleusercontent.com", oauth2.REDIRECT_URI, "st4te", challenge,
                             "support@imolocale.test")
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.google.com/o/oauth2/v2/auth"
    q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
    assert q == {"client_id": "cid.apps.googleusercontent.com", "redirect_uri": "http://127.0.0.1:53682/",
                 "response_type": "code", "scope": "https://mail.google.com/", "access_type": "offline",
                 "prompt": "consent", "state": "st4te", "code_challenge": challenge,
                 "code_challenge_method": "S256", "login_hint": "support@imolocale.test"}


@pytest.mark.parametrize("pasted", [
    "4/0AbCd-code\n",
    "http://127.0.0.1:53682/?state=st4te&code=4/0AbCd-code&scope=https://mail.google.com/",
    "  http://127.0.0.1:53682/?state=st4te&code=4%2F0AbCd-code  ",
    "state=st4te&code=4/0AbCd-code",
])
def test_code_from_what_the_admin_pastes(pasted):
    assert oauth2.code_from(pasted, "st4te") == "4/0AbCd-code"


def test_code_from_another_attempt_or_a_refusal_is_rejected():
    with pytest.raises(ValueError, match="another sign-in attempt"):
        oauth2.code_from("http://127.0.0.1:53682/?state=other&code=x", "st4te")
    with pytest.raises(ValueError, match="access_denied"):
        oauth2.code_from("http://127.0.0.1:53682/?error=access_denied&state=st4te", "st4te")
