"""A real, throwaway PostgreSQL cluster for tests, run as a child process in its own folder."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from maildesk.store import pg_admin
from maildesk.testing.localstack import HOST, free_port, log_tail

SUPERUSER = "postgres"
ROLE = "maildesk"
TEMPLATE = "maildesk_template"
# Test speed: the OS page cache outlives a killed server, so fsync and full-page writes buy nothing here.
# synchronous_commit stays on: with it off, kill() would lose the last commits, and the crash tests
# would see data a real crash keeps vanish.
SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "16MB",
    "logging_collector": "off",
}


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", folder.parent.name))


def find_postgres() -> Path:
    """The folder holding initdb and postgres: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    candidates = [Path(found).resolve().parent for name in ("initdb", "postgres", "pg_ctl")
                  if (found := shutil.which(name))]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise FileNotFoundError(
        "PostgreSQL not found (initdb in PATH or /usr/lib/postgresql/*/bin); install it: apt-get install postgresql"
    )


def process_gone(pid: int) -> bool:
    """Exited (or a zombie nobody reaps, which holds no socket or shared memory)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class PgDatabase:
    """One test's database: the URL carries no password, which the caller passes separately."""

    url: str
    name: str
    password: str
    server: Postgres


class Postgres:
    """A real PostgreSQL cluster inside ``root``, listening on 127.0.0.1 and on a socket in ``root``.

    initdb refuses root, so as root the server runs as the Debian package's ``postgres`` user, which
    must own ``root`` and be able to traverse its parents (tempfile.mkdtemp + chmod 0755).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.bin = find_postgres()
        self.host = HOST
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self._proc: subprocess.Popen | None = None
        self._uid, self._gid = self._identity()

    def _identity(self) -> tuple[int | None, int | None]:
        """(uid, gid) to run as: ourselves unless we are root."""
        if os.geteuid() != 0:
            return None, None
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError(
                "running as root needs the system user 'postgres' (created by apt-get install postgresql)"
            ) from exc
        return user.pw_uid, user.pw_gid

    def _run_as(self) -> dict:
        """subprocess arguments that drop to the cluster's user (and root's extra groups)."""
        if self._uid is None:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        """No PG* variables of the caller leak in; C locale so messages are stable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.root, ("initdb.log", "postgres.log"), lines)

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._uid is not None:
            for folder in (self.root, self.sockets):
                os.chown(folder, self._uid, self._gid)
        with open(self.root / "initdb.log", "wb") as log:
            done = subprocess.run(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                 "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root, env=self._env(), **self._run_as(),
            )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{self.log_tail()}")
        # trust on the socket in our own folder; a password (SCRAM) over TCP, as in production
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all all trust\nhost all all {HOST}/32 scram-sha-256\n")
        if self._uid is not None:
            os.chown(hba, self._uid, self._gid)

    def start(self) -> None:
        """initdb on first use (~1 s), then start the server and return once it accepts connections."""
        if self.is_running:
            return
        first = not (self.data / "PG_VERSION").exists()
        if first:
            self._initdb()
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.sockets)}
        args = [f"--{k}={v}" for k, v in settings.items()]
        with open(self.root / "postgres.log", "ab") as log:
            # our child, not pg_ctl's: we reap it, so a killed server leaves no zombie holding its pid
            self._proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root, env=self._env(),
                start_new_session=True,  # own process group, so kill() also reaches the backends
                **self._run_as(),
            )
        self._wait_ready()
        if first:
            self._set_up()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30  # crash recovery after kill() may replay WAL
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"postgres exited during startup:\n{self.log_tail()}")
            try:
                with self.superuser():
                    return
            except psycopg.OperationalError:
                time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"postgres did not accept connections within 30 s:\n{self.log_tail()}")

    def _set_up(self) -> None:
        """The login role, and a template holding the extensions so each database is one cheap copy."""
        with self.superuser() as conn:
            pg_admin.create_login_role(conn, ROLE, self.password)
            pg_admin.create_database(conn, TEMPLATE, ROLE)
        with self.superuser(TEMPLATE) as conn:
            pg_admin.add_template_extensions(conn)
        with self.superuser() as conn:
            pg_admin.mark_template(conn, TEMPLATE)

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _children(self) -> list[int]:
        """The postmaster's children (backends, workers), read from /proc."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == self._proc.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, data is checkpointed and kept."""
        if self._proc is None:
            return
        self._signal(self._proc.pid, signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
            self._proc = None
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend: a crash; the next start() runs crash recovery.

        Each backend leads its own process group (PostgreSQL does setsid), so killpg would miss them,
        and a backend left behind answers its client until it notices and keeps the shared memory
        attached. The postmaster is stopped first so it forks nothing while its children are listed.
        """
        if self._proc is None:
            return
        self._signal(self._proc.pid, signal.SIGSTOP)
        children = self._children()
        for pid in children:
            self._signal(pid, signal.SIGKILL)
        self._signal(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._proc = None
        deadline = time.monotonic() + 10
        while not all(process_gone(pid) for pid in children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres backends {children} outlived SIGKILL for 10 s")
            time.sleep(0.005)

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------------

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection:
        """An autocommit superuser connection over the unix socket (trust); the caller closes it."""
        return psycopg.connect(host=str(self.sockets), port=self.port, user=SUPERUSER, dbname=dbname,
                               autocommit=True, connect_timeout=5)

    def url(self, name: str) -> str:
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str | None = None) -> str:
        """A new database owned by the maildesk role, copied from the template; returns its URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        with self.superuser() as conn:
            pg_admin.create_database(conn, name, ROLE, TEMPLATE)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.superuser() as conn:
            pg_admin.drop_database(conn, name)

    def database(self, name: str | None = None) -> PgDatabase:
        url = self.create_database(name)
        return PgDatabase(url=url, name=url.rsplit("/", 1)[1], password=self.password, server=self)
