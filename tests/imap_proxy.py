"""A plain IMAP relay in front of Dovecot that plays Gmail's refusals: it answers
`NO Some messages could not be FETCHed (Failure)` to any body FETCH that names
one of `refuse_uids` (as Gmail does for a message it cannot serve), and counts
the logins it relays. Everything else passes through unchanged."""
from __future__ import annotations

import re
import socket
import threading

_FETCH = re.compile(rb"^(\S+) UID FETCH (\S+) (.*)$", re.I)
_LOGIN = re.compile(rb"^\S+ (LOGIN|AUTHENTICATE) ", re.I)


def _names(uid_set: bytes, uid: int) -> bool:
    """Is `uid` in an IMAP UID set such as b"1:3,7,9:*"?"""
    for part in uid_set.split(b","):
        low, _, high = part.partition(b":")
        a = int(low) if low != b"*" else uid
        b = a if not high else (int(high) if high != b"*" else max(uid, a))
        if min(a, b) <= uid <= max(a, b):
            return True
    return False


class RefusingImapProxy:
    def __init__(self, backend_port: int, refuse_uids: set[int] | None = None):
        self.backend_port = backend_port
        self.refuse_uids = set(refuse_uids or ())
        self.refusals = 0
        self.logins = 0
        self.commands: list[bytes] = []  # every command but the login (it carries the password)
        self.live: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        self.live.append(client)
        lock = threading.Lock()
        threading.Thread(target=_pump, args=(backend, client, lock), daemon=True).start()
        buf = b""
        try:
            while data := client.recv(65536):
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    answer = self._answer(line)
                    if answer is not None:
                        with lock:
                            client.sendall(answer)
                    else:
                        backend.sendall(line + b"\r\n")
        except OSError:
            pass
        finally:
            for s in (client, backend):
                try:
                    s.close()
                except OSError:
                    pass

    def _answer(self, line: bytes) -> bytes | None:
        if _LOGIN.match(line):
            self.logins += 1
        elif line[:1].isalnum():
            self.commands.append(line.split(b" ", 1)[-1])
        m = _FETCH.match(line)
        if m and b"BODY" in m.group(3).upper() and b"BODYSTRUCTURE" not in m.group(3).upper() \
                and any(_names(m.group(2), uid) for uid in self.refuse_uids):
            self.refusals += 1
            return m.group(1) + b" NO Some messages could not be FETCHed (Failure)\r\n"
        return None

    def end_sessions(self) -> None:
        """Say BYE and hang up, as Gmail does when an OAuth2 session's hour is over."""
        for client in self.live:
            try:
                client.sendall(b"* BYE Session expired, please login again.\r\n")
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.live.clear()

    def close(self) -> None:
        self.listener.close()


def _pump(src: socket.socket, dst: socket.socket, lock: threading.Lock) -> None:
    try:
        while data := src.recv(65536):
            with lock:
                dst.sendall(data)
    except OSError:
        pass
