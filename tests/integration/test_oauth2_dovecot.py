"""IMAP XOAUTH2 against Dovecot itself: its oauth2 passdb checks each access
token with our local token endpoint (`/tokeninfo`), as it would with Google's."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from maildesk.adapters import oauth2
from maildesk.adapters.imap import Inbox
from maildesk.adapters.imap_types import LoginRefused
from maildesk.testing.dovecot import Dovecot
from tests.oauth_stub import TokenServer
from tests.support import SUPPORT, make_config, mail


class OAuth2Dovecot(Dovecot):
    """The test Dovecot plus an oauth2 passdb for XOAUTH2/OAUTHBEARER (passwords still work)."""

    def __init__(self, root: Path, tokeninfo_url: str):
        super().__init__(root)
        self.tokeninfo_url = tokeninfo_url

    def _write_config(self) -> Path:
        path = super()._write_config()
        ext = self.root / "dovecot-oauth2.conf.ext"
        ext.write_text(f"tokeninfo_url = {self.tokeninfo_url}\nusername_attribute = email\n")
        conf = path.read_text()
        conf = conf.replace("auth_mechanisms = plain login\n", "auth_mechanisms = plain login xoauth2 oauthbearer\n")
        conf = conf.replace("passdb {\n", f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                                          f"  args = {ext}\n}}\npassdb {{\n", 1)
        path.write_text(conf)
        return path


@pytest.fixture
def tokens():
    with TokenServer() as server:
        yield server


@pytest.fixture
def oauth_dovecot(dovecot_binary, tokens):
    root = Path(tempfile.mkdtemp(prefix="maildesk-dovecot-"))
    root.chmod(0o755)
    server = OAuth2Dovecot(root, tokens.tokeninfo_url)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def inbox_for(server: Dovecot, get) -> Inbox:
    cfg = make_config(imap_port=server.port, mailbox={"password": None})
    return Inbox(cfg.mailbox, None, token_source=get)


def test_inbox_signs_in_with_xoauth2_and_reads_mail(oauth_dovecot, tokens):
    oauth_dovecot.append(mail(subject="par OAuth2"))
    get = oauth2.TokenSource("cid", "secret", tokens.refresh_token, tokens.token_uri)
    inbox = inbox_for(oauth_dovecot, get)
    inbox.connect()
    try:
        [uid] = inbox.pending()
        [fetched] = inbox.fetch([uid], 10_000_000)
        assert b"par OAuth2" in fetched.raw
    finally:
        inbox.close()
    assert tokens.issued == ["ya29.test-1"]
    assert tokens.checked == ["ya29.test-1"]  # Dovecot asked the token endpoint, as it would ask Google


def test_dovecot_refuses_a_token_it_cannot_verify(oauth_dovecot, tokens):
    inbox = inbox_for(oauth_dovecot, lambda: "ya29.forged")
    with pytest.raises(LoginRefused, match=f"IMAP login refused for {SUPPORT}"):
        inbox.connect()
    assert tokens.checked == ["ya29.forged"]
