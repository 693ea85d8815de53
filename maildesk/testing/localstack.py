"""A throwaway mail stack on loopback: a real Dovecot IMAP server (testing/dovecot.py) and a
capturing SMTP sink (testing/smtp_sink.py).

Used by the test suite and by ``maildesk demo``, so it depends only on the stdlib, imapclient and
aiosmtpd. Nothing here is meant for production: no TLS, plaintext passwords, everything on 127.0.0.1.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port the kernel considers free right now (small race with other processes, fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log_tail(root, names, lines: int = 30) -> str:
    """The last lines of each of a throwaway server's log files that exist, in order (for a
    failing test's message)."""
    out: list[str] = []
    for name in names:
        f = root / name
        if f.exists():
            out += f.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(out)
