"""Quick connection checks for `maildesk check` and `maildesk status`: log in
to IMAP and SMTP with a short timeout and say in one line what happened,
with a hint naming the setting to fix when it failed. Nothing is changed on
either server: folders are opened read-only, no mail is sent. The logins are
the daemon's own (adapters/connect.py): what `check` says is what the daemon meets."""
from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import asdict, dataclass

import aiosmtplib

from maildesk.adapters import connect

GMAIL_HOSTS = ("gmail.com", "googlemail.com")


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# what Gmail (IMAP and SMTP) says when it refuses a login for another reason than the password
REFUSALS = (
    ("connections", ("too many simultaneous connections", "too many connections", "maximum number of connections")),
    ("bandwidth", ("bandwidth limit", "command or bandwidth", "overquota", "exceeded command")),
    ("throttled", ("too many login", "too many failed", "try again later", "temporarily")),
    ("imap_disabled", ("not enabled for imap", "imap access is disabled")),
    ("web_login", ("log in via your web browser", "web login required", "webloginrequired")),
)


def kind_of(error: BaseException) -> str:
    """auth | connections | bandwidth | throttled | imap_disabled | web_login | refused | timeout |
    dns | tls | other: what went wrong, for the hint. The server's words decide first: Gmail
    refuses a right password too, for too many connections or its daily bandwidth."""
    text = str(error).lower()
    for kind, words in REFUSALS:
        if any(w in text for w in words):
            return kind
    if connect.imap_login_refused(error) or isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return "auth"
    if isinstance(error, aiosmtplib.SMTPConnectError) and not isinstance(error, TimeoutError) \
            and isinstance(error.__cause__, OSError):  # aiosmtplib wraps the socket's own error
        return kind_of(error.__cause__)
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, socket.gaierror):
        return "dns"
    if isinstance(error, (socket.timeout, TimeoutError, aiosmtplib.SMTPTimeoutError)):
        return "timeout"
    if isinstance(error, ssl.SSLError):
        return "tls"
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
    other = {
        "connections": "the server refuses more connections for this account (Gmail allows about 15): close "
                       "other mail programs or phones using it, or stop a second maildesk; the password is fine",
        "bandwidth": "the account used up its daily download or command allowance (Gmail: about 2,500 MB of "
                     "IMAP a day); it comes back by itself within 24 h; the password is fine",
        "throttled": "too many logins in a short time: the server makes the account wait; retry in an hour "
                     "and do not restart maildesk in a loop meanwhile",
        "imap_disabled": "IMAP is turned off for this account: Gmail > Settings > Forwarding and POP/IMAP > "
                         "Enable IMAP (Workspace: the admin console must allow it too)",
        "web_login": "Google wants a sign-in from a browser first: sign in at https://mail.google.com from the "
                     "server's network, or use an app password or [oauth2]",
    }
    if kind in other:
        return other[kind]
    where = f"{sec.host}:{sec.port}"
    usual = {"mailbox": "imap.gmail.com, port 993, security \"ssl\"",
             "smtp": "smtp.gmail.com, port 587, security \"starttls\" (or 465, \"ssl\")"}[section]
    if kind == "refused":
        return (f"nothing accepts connections on {where}: check {section}.host, {section}.port and "
                f"{section}.security" + (f" (Gmail: {usual})" if gmail else ""))
    if kind == "timeout":
        return f"no answer from {where} within {timeout or '?'} s: a firewall, or the wrong host or port"
    if kind == "dns":
        return (f"the host name {sec.host} could not be resolved (DNS): check {section}.host, and that this "
                f"machine can look names up (`getent hosts {sec.host}`; /etc/resolv.conf)")
    if kind == "tls":
        return (f'TLS failed on {where}: security = "ssl" needs a TLS port (IMAP 993, SMTP 465), '
                f'"starttls" a plain one (IMAP 143, SMTP 587)')
    return None


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        text = f"{error.code} {error.message}"
    return " ".join(f"{type(error).__name__}: {text}".split())[:200]


def imap(sec, password, token_source=None, timeout: float = 10, folders: bool = True) -> list[Result]:
    """IMAP login, then (with `folders`) the folders maildesk reads and writes."""
    where = f"{sec.username} at {sec.host}:{sec.port} ({sec.security})"
    try:
        client = connect.imap_client(sec, password, token_source, timeout)
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
    out += _special(client, "sent_folder", sec.sent_folder, b"\\Sent", required=True)
    out += _special(client, "junk_folder", sec.junk_folder, b"\\Junk", required=False)
    if sec.sent_folder and sec.sent_folder.lower() not in ("auto", "\\sent"):
        extra.append(("sent_folder", sec.sent_folder))
    if sec.junk_folder and sec.junk_folder.lower() not in ("auto", "\\junk"):
        extra.append(("junk_folder", sec.junk_folder))
    for key, name in extra:
        try:
            exists = client.folder_exists(name)
        except Exception as e:  # noqa: BLE001 - reported as a failed line
            out.append(Result("imap folder", False, f"{name}: {_describe(e)}", f"check mailbox.{key}"))
            continue
        if exists:
            out.append(Result("imap folder", True, f"{name} ({key}) exists"))
        elif key in ("sent_folder", "junk_folder"):
            out.append(Result("imap folder", False, f"{name} ({key}) does not exist",
                              f'fix mailbox.{key}, or set it to "auto" (Gmail names it in the account\'s language)'))
        else:
            out.append(Result("imap folder", True, f"{name} ({key}) missing: maildesk creates it on its first run"))
    return out


def _special(client, key: str, name: str | None, flag: bytes, required: bool) -> list[Result]:
    """A folder set to "auto": found by its special-use flag, whatever its name in this language."""
    if not name or name.lower() not in ("auto", flag.decode().lower()):
        return []
    try:
        found = client.find_special_folder(flag)
    except Exception as e:  # noqa: BLE001 - reported as a failed line
        return [Result("imap folder", False, f"{key} auto: {_describe(e)}", f"set mailbox.{key} to the folder's name")]
    if found:
        return [Result("imap folder", True, f"{found} ({key} = \"auto\", found by its {flag.decode()} flag)")]
    if required:
        return [Result("imap folder", False, f"{key} = \"auto\": no folder is flagged {flag.decode()}",
                       f"set mailbox.{key} to the folder's name")]
    return [Result("imap folder", True, f"{key} = \"auto\": no folder is flagged {flag.decode()}; "
                   "spam is not read")]


def smtp(cfg, password, token_source=None, timeout: float = 10) -> Result:
    """Connect, say EHLO, STARTTLS when configured, log in as the daemon does; send nothing."""
    sec = cfg.smtp
    where = f"{sec.host}:{sec.port} ({sec.security})"
    try:
        user = asyncio.run(_smtp_login(cfg, password, token_source, timeout))
    except Exception as e:  # every failure becomes a line with a hint, never a traceback
        return Result("smtp login", False, f"{where}: {_describe(e)}", hint("smtp", sec, kind_of(e), timeout))
    if user is None:
        return Result("smtp login", True, f"{where}, connected (no username set: sending without login)")
    return Result("smtp login", True, f"{where}, signed in as {user}" + (" (OAuth2)" if token_source else ""))


async def _smtp_login(cfg, password, token_source, timeout: float) -> str | None:
    client, user = await connect.smtp_connect(cfg, password, token_source, timeout=timeout)
    try:
        await client.quit()
    except Exception:  # the login is what was asked; a rude goodbye changes nothing
        client.close()
    return user
