"""Quick connection checks for `maildesk check` and `maildesk status`: log in
to IMAP and SMTP with a short timeout and say in one line what happened,
with a hint naming the setting to fix when it failed. Nothing is changed on
either server: folders are opened read-only, no mail is sent."""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import asdict, dataclass

import imapclient
from imapclient.exceptions import LoginError

GMAIL_HOSTS = ("gmail.com", "googlemail.com")


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def kind_of(error: BaseException) -> str:
    """auth | refused | timeout | dns | tls | other: what went wrong, for the hint."""
    if isinstance(error, (LoginError, smtplib.SMTPAuthenticationError)):
        return "auth"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, socket.gaierror):
        return "dns"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(error, ssl.SSLError):
        return "tls"
    text = str(error).lower()
    if "authenticat" in text or "credentials" in text or "password" in text:
        return "auth"
    return "other"


def hint(section: str, sec, kind: str, timeout: float | None = None) -> str | None:
    """One sentence an admin can act on. `sec` is the [mailbox] or [smtp] settings."""
    gmail = sec.host.lower().endswith(GMAIL_HOSTS)
    secret = f"${sec.password_env}" if getattr(sec, "password_env", None) else f"{section}.password_file"
    if kind == "auth":
        if gmail:
            return ("Gmail refuses the account's normal password here: turn on 2-Step Verification, create an "
                    f"app password (Google Account > Security > App passwords) and put it in {secret}, "
                    "or sign in with [oauth2]")
        return f"check {section}.username and the password in {secret}"
    where = f"{sec.host}:{sec.port}"
    usual = {"mailbox": "imap.gmail.com, port 993, security \"ssl\"",
             "smtp": "smtp.gmail.com, port 587, security \"starttls\" (or 465, \"ssl\")"}[section]
    if kind == "refused":
        return (f"nothing accepts connections on {where}: check {section}.host, {section}.port and "
                f"{section}.security" + (f" (Gmail: {usual})" if gmail else ""))
    if kind == "timeout":
        return f"no answer from {where} within {timeout or '?'} s: a firewall, or the wrong host or port"
    if kind == "dns":
        return f"{sec.host} is not a known host name: check {section}.host"
    if kind == "tls":
        return (f'TLS failed on {where}: security = "ssl" needs a TLS port (IMAP 993, SMTP 465), '
                f'"starttls" a plain one (IMAP 143, SMTP 587)')
    return None


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, smtplib.SMTPResponseException):
        msg = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        text = f"{error.smtp_code} {msg}"
    return " ".join(f"{type(error).__name__}: {text}".split())[:200]


def _imap_connect(sec, password, token_source, timeout):
    client = imapclient.IMAPClient(sec.host, port=sec.port, ssl=sec.security == "ssl",
                                   ssl_context=ssl.create_default_context(), timeout=timeout)
    try:
        if sec.security == "starttls":
            client.starttls(ssl.create_default_context())
        if token_source is not None:
            client.oauth2_login(sec.username, token_source())
        else:
            client.login(sec.username, password or "")
    except BaseException:
        try:
            client.shutdown()
        except Exception:  # the socket may be gone already; the first error is the news
            pass
        raise
    return client


def imap(sec, password, token_source=None, timeout: float = 10, folders: bool = True) -> list[Result]:
    """IMAP login, then (with `folders`) the folders maildesk reads and writes."""
    where = f"{sec.username} at {sec.host}:{sec.port} ({sec.security})"
    try:
        client = _imap_connect(sec, password, token_source, timeout)
    except Exception as e:  # every failure becomes a line with a hint, never a traceback
        return [Result("imap login", False, f"{where}: {_describe(e)}", hint("mailbox", sec, kind_of(e), timeout))]
    results = [Result("imap login", True, where)]
    try:
        if folders:
            results += _folders(client, sec)
    finally:
        try:
            client.logout()
        except Exception:  # logging out of a broken connection: nothing to report
            pass
    return results


def _folders(client, sec) -> list[Result]:
    out = []
    try:
        info = client.select_folder(sec.folder, readonly=True)
        out.append(Result("imap folder", True, f"{sec.folder}: {info.get(b'EXISTS', 0)} message(s) waiting"))
    except Exception as e:  # a missing folder or no rights: say which
        out.append(Result("imap folder", False, f"{sec.folder}: {_describe(e)}",
                          f"create the folder {sec.folder!r} or fix mailbox.folder"))
    extra = [("processed_folder", sec.processed_folder), ("quarantine_folder", sec.quarantine_folder)]
    if sec.sent_folder:
        extra.append(("sent_folder", sec.sent_folder))
    for key, name in extra:
        try:
            exists = client.folder_exists(name)
        except Exception as e:  # noqa: BLE001 - reported as a failed line
            out.append(Result("imap folder", False, f"{name}: {_describe(e)}", f"check mailbox.{key}"))
            continue
        if exists:
            out.append(Result("imap folder", True, f"{name} ({key}) exists"))
        elif key == "sent_folder":
            out.append(Result("imap folder", False, f"{name} (sent_folder) does not exist",
                              'fix mailbox.sent_folder (Gmail: "[Gmail]/Sent Mail", or "[Gmail]/Messages envoyés")'))
        else:
            out.append(Result("imap folder", True, f"{name} ({key}) missing: maildesk creates it on its first run"))
    return out


def smtp(sec, password, token_source=None, timeout: float = 10) -> Result:
    """Connect, say EHLO, STARTTLS when configured, log in; send nothing."""
    where = f"{sec.host}:{sec.port} ({sec.security})"
    try:
        cls = smtplib.SMTP_SSL if sec.security == "ssl" else smtplib.SMTP
        kwargs = {"context": ssl.create_default_context()} if sec.security == "ssl" else {}
        with cls(sec.host, sec.port, timeout=timeout, **kwargs) as client:
            client.ehlo()
            if sec.security == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if token_source is not None:
                from .oauth2 import xoauth2_string
                token = token_source()
                client.auth("XOAUTH2", lambda challenge=None: xoauth2_string(sec.username, token),
                            initial_response_ok=True)
                done = f"{where}, signed in as {sec.username} (OAuth2)"
            elif sec.username:
                client.login(sec.username, password or "")
                done = f"{where}, signed in as {sec.username}"
            else:
                done = f"{where}, connected (no username set: sending without login)"
    except Exception as e:  # every failure becomes a line with a hint, never a traceback
        return Result("smtp login", False, f"{where}: {_describe(e)}", hint("smtp", sec, kind_of(e), timeout))
    return Result("smtp login", True, done)
