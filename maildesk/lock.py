"""One daemon per database: an exclusive flock on a file beside the database. `run`, `once`,
`restore`, `migrate` and `import-mbox` take it; `status` asks who holds it."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


class AlreadyRunning(Exception):
    pass


class InstanceLock:
    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"another maildesk (pid {holder}) is already running on {self.path.with_suffix('')}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def held_elsewhere(self) -> int | None:
        """The pid of a running daemon, or None: for `maildesk status`."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@contextmanager
def alone(db_path: Path, doing: str):
    """The daemon's lock held while `doing` (restoring, migrating, importing a mailbox); a
    maildesk running on the same database makes it raise AlreadyRunning, worded for the admin."""
    lock = InstanceLock(db_path)
    try:
        lock.acquire()
    except AlreadyRunning as e:
        raise AlreadyRunning(f"{e}: stop it before {doing}") from None
    try:
        yield
    finally:
        lock.release()
