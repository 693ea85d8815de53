"""A real Dovecot IMAP server for tests and the demo, run as a child process in its own folder."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from imapclient import IMAPClient, imap_utf7

from maildesk.testing.localstack import HOST, free_port, log_tail

DEFAULT_USERS = {"support@imolocale.test": "secret"}


def find_dovecot() -> str:
    """Path of the dovecot binary; /usr/sbin is often not on a normal user's PATH."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError(
            "dovecot binary not found (PATH, /usr/sbin); install it: apt-get install dovecot-imapd"
        )
    return found


def _quote(value: str) -> str:
    """Quote a value for dovecot.conf (mailbox names may contain spaces)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_name(name: str) -> str:
    """Dovecot 2.3 wants UTF-8 names in its config; accept the IMAP wire form (modified UTF-7) too."""
    if name.isascii() and "&" in name:
        return imap_utf7.decode(name.encode("ascii"))
    return name


class Dovecot:
    """A real Dovecot IMAP server running as a child process inside ``root``.

    Real Dovecot rather than a mock so that IDLE timing, MOVE, UIDPLUS and SPECIAL-USE behave as
    they do against a production server.
    """

    def __init__(
        self,
        root: Path,
        users: dict[str, str] | None = None,
        special_use: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.users = dict(users or DEFAULT_USERS)
        # special-use flag -> mailbox name (UTF-8, or the modified UTF-7 a client sees on the wire)
        # Junk plays Gmail's "[Gmail]/Spam": maildesk reads it each pass
        self.special_use = dict(special_use if special_use is not None else {"\\Sent": "Sent", "\\Junk": "Junk"})
        self.host = HOST
        self.port = free_port()
        self._greeting = f"maildesk-test-{self.root.name}"  # whose server answers (start)
        self._started = False
        self.binary = find_dovecot()
        self._proc: subprocess.Popen | None = None

    # -- configuration ------------------------------------------------------------------------

    def _identities(self) -> tuple[str, str, str, int, int]:
        """(internal user, its group, login user, mail uid, mail gid).

        Non-root: everything runs as us. As root, imap-login refuses to run as root ("This process
        must not be run as root") and the userdb may not return uid 0, so use the Debian package's
        system users: ``dovecot`` (internal + mail storage) and ``dovenull`` (login).
        """
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid())
            group = grp.getgrgid(os.getegid()).gr_name
            return me.pw_name, group, me.pw_name, me.pw_uid, me.pw_gid
        try:
            internal = pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
        except KeyError as exc:
            raise RuntimeError(
                "running as root needs the system users 'dovecot' and 'dovenull' "
                "(created by apt-get install dovecot-imapd)"
            ) from exc
        group = grp.getgrgid(internal.pw_gid).gr_name
        return "dovecot", group, "dovenull", internal.pw_uid, internal.pw_gid

    def _check_traversable(self, uid: int, gid: int) -> None:
        """Fail early and clearly instead of with Dovecot's "Permission denied" in a child log."""
        if os.geteuid() != 0:
            return
        for folder in [self.root, *self.root.parents]:
            st = folder.stat()
            if st.st_uid == uid and st.st_mode & 0o100:
                continue
            if st.st_gid == gid and st.st_mode & 0o010:
                continue
            if st.st_mode & 0o001:
                continue
            raise RuntimeError(
                f"{folder} is not traversable by uid {uid} (mode {oct(st.st_mode & 0o777)}); "
                "Dovecot drops to that user. Use tempfile.mkdtemp() + chmod 0755, not pytest's tmp_path."
            )

    def _write_config(self) -> Path:
        internal, internal_group, login, uid, gid = self._identities()
        r = self.root
        r.mkdir(parents=True, exist_ok=True)
        self._check_traversable(uid, gid)
        for sub in ("run", "state", "mail", "home"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):  # the mail user creates per-user folders here
            os.chown(r / sub, uid, gid)
        passwd = r / "passwd"
        passwd.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        mailboxes = "".join(
            f"  mailbox {_quote(mailbox_name(name))} {{\n"
            f"    special_use = {flag}\n"
            f"    auto = subscribe\n"
            f"  }}\n"
            for flag, name in self.special_use.items()
        )
        conf = f"""\
# Generated by maildesk.localstack for Dovecot 2.3 -- throwaway test server.
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
protocols = imap
login_greeting = {self._greeting}
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = {uid}
first_valid_gid = 0
mail_location = maildir:{r}/mail/%u
mail_max_userip_connections = 100
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        path = r / "dovecot.conf"
        path.write_text(conf)
        return path

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of Dovecot's log and stderr (config errors go to stderr before log_path applies)."""
        return log_tail(self.root, ("dovecot.stderr", "dovecot.log"), lines)

    def start(self) -> None:
        """Start Dovecot and return once it greets IMAP clients (~25 ms)."""
        if self.is_running:
            return
        conf = self._write_config()
        (self.root / "run" / "master.pid").unlink(missing_ok=True)  # stale after kill()
        with open(self.root / "dovecot.stderr", "ab") as err:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # own process group, so kill() also reaches the children
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"dovecot exited during startup:\n{self.log_tail()}")
            greeting = self._greeting_seen()
            if greeting is not None and self._greeting.encode() in greeting:
                self._started = True
                return
            if greeting is not None:  # another server answers on our port: it took it before we bound it
                self.kill()
                if self._started:  # the tests know this port: say so rather than move
                    raise RuntimeError(f"another server answers on {self.host}:{self.port}: {greeting[:80]!r}")
                print(f"dovecot: port {self.port} answered by another server; trying another", file=sys.stderr)
                self.port = free_port()
                return self.start()
            time.sleep(0.005)
        self.kill()
        raise RuntimeError(f"dovecot did not greet on {self.host}:{self.port} within 10 s:\n{self.log_tail()}")

    def _greeting_seen(self) -> bytes | None:
        """The first line a client gets on our port once some server greets there, else None.

        A bare connect is not enough: the master binds the port before imap-login is up (and keeps
        it bound even if imap-login cannot start). And a greeting is not enough: it must be this
        instance's (login_greeting names its folder), or a clash on the port would pass unseen,
        the tests' mail going to another test's server.
        """
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                line = b""
                while not line.endswith(b"\n") and len(line) < 4096:
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    line += chunk
                s.sendall(b"0 LOGOUT\r\n")  # polite: no "Connection reset" noise in the log
                return line if line.startswith(b"* OK") else None
        except OSError:
            return None

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """SIGTERM and wait; mail stays on disk.

        The signal goes to the whole process group (SIGTERM to the master alone takes ~1.1 s).
        Even then, about one stop in ten the master sits out its 1 s shutdown wait after every
        child has exited (a reaped imap-login still counted as available), so after a short
        grace the group gets SIGKILL. Maildir writes are atomic renames; indexes are rebuilt.
        """
        if self._proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._proc.wait(timeout=0.25)
            self._proc = None
        except subprocess.TimeoutExpired:
            self.kill()  # the master is not reaped yet, so its group id cannot have been reused

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, as far as clients can tell."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)  # the whole group, or children would outlive it
        self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same mail."""
        self.stop()
        self.start()

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers over the real IMAP port -----------------------------------------------------

    def client(self, user: str | None = None) -> IMAPClient:
        """A logged-in IMAPClient; the caller logs out (or uses it as a context manager)."""
        user = user or next(iter(self.users))
        c = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        c.login(user, self.users[user])
        return c

    def append(
        self,
        raw: bytes,
        folder: str = "INBOX",
        user: str | None = None,
        flags: Iterable[bytes | str] = (),
        msg_time=None,
    ) -> None:
        with self.client(user) as c:
            c.append(folder, raw, flags=tuple(flags), msg_time=msg_time)

    def fetch_all(self, folder: str = "INBOX", user: str | None = None) -> list[bytes]:
        """Raw messages in UID order, fetched with BODY.PEEK[] so \\Seen is left alone."""
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return []
            data = c.fetch(uids, ["BODY.PEEK[]"])
            return [data[uid][b"BODY[]"] for uid in sorted(data)]

    def count(self, folder: str = "INBOX", user: str | None = None) -> int:
        with self.client(user) as c:
            return c.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]

    def folders(self, user: str | None = None) -> list[str]:
        with self.client(user) as c:
            return [name for _flags, _sep, name in c.list_folders()]
