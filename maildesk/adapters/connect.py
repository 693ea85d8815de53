"""The one way maildesk connects and logs in, to IMAP (imapclient) and to SMTP (aiosmtplib),
shared by the daemon and `maildesk check`/`status` so that the two can never drift apart
again (they once did: with OAuth2 and no `[smtp] username`, `check` signed in as `None`).

Errors come out as the libraries raise them: the daemon maps them to its own exception
types (adapters/imap.py), `check` to a line with a hint (adapters/probe.py)."""
from __future__ import annotations

import ssl
import sys

import aiosmtplib


def imap_client(sec, password: str | None, token_source=None, timeout: float | None = None):
    """An IMAPClient logged in to `[mailbox]` (`sec`): XOAUTH2 with a token source, else the password."""
    # imported here, not at the top: read-only commands (`show`, `list`) never pay for imapclient
    import imapclient

    token = token_source() if token_source is not None else None  # before the socket: TokenError first
    context = ssl.create_default_context() if sec.security in ("ssl", "starttls") else None
    client = imapclient.IMAPClient(sec.host, port=sec.port, ssl=sec.security == "ssl",
                                   ssl_context=context if sec.security == "ssl" else None,
                                   timeout=timeout if timeout is not None else sec.timeout_seconds)
    try:
        if sec.security == "starttls":
            client.starttls(context)
        client.normalise_times = False
        if token is not None:
            client.oauth2_login(sec.username, token)
        else:
            client.login(sec.username, password or "")
    except BaseException:
        try:
            client.shutdown()
        except Exception:  # the socket may be gone already; the first error is the news
            pass
        raise
    return client


def imap_login_refused(error: BaseException) -> bool:
    """imapclient's LoginError, asked without importing imapclient (an instance means it is loaded)."""
    exceptions = sys.modules.get("imapclient.exceptions")
    return exceptions is not None and isinstance(error, exceptions.LoginError)


def smtp_user(cfg, oauth: bool) -> str | None:
    """Who we sign in to SMTP as: `[smtp] username`; with OAuth2 the mailbox's user when it is
    unset (Gmail's token belongs to that account). None: sending without login."""
    if oauth:
        return cfg.smtp.username or cfg.mailbox.username
    return cfg.smtp.username or None


def smtp_client(sec, timeout: float | None = None) -> aiosmtplib.SMTP:
    """An unconnected client for `[smtp]` (`sec`); TLS is always verified."""
    # loading the system's CA certificates takes ~20 ms: only when TLS is used
    return aiosmtplib.SMTP(hostname=sec.host, port=sec.port,
                           timeout=timeout if timeout is not None else sec.timeout_seconds,
                           use_tls=sec.security == "ssl", start_tls=(sec.security == "starttls"),
                           tls_context=ssl.create_default_context() if sec.security != "none" else None)


async def smtp_login(client: aiosmtplib.SMTP, cfg, password: str | None, token_source=None) -> str | None:
    """Sign a connected client in as `smtp_user`; returns that user (None: no login)."""
    user = smtp_user(cfg, oauth=token_source is not None)
    if token_source is not None:
        await client.auth_xoauth2(user, token_source())
    elif user:
        await client.login(user, password or "")
    return user


async def smtp_connect(cfg, password: str | None, token_source=None, client=None,
                       timeout: float | None = None) -> tuple[aiosmtplib.SMTP, str | None]:
    """Connected and signed in: (client, the user signed in as). Closed again on any failure."""
    client = client if client is not None else smtp_client(cfg.smtp, timeout)
    try:
        await client.connect()
        user = await smtp_login(client, cfg, password, token_source)
    except BaseException:
        client.close()
        raise
    return client, user
