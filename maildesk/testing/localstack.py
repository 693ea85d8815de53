"""A throwaway mail stack on loopback: a real Dovecot IMAP server (testing/dovecot.py) and a
capturing SMTP sink (testing/smtp_sink.py).

Used by the test suite and by ``maildesk demo``, so it depends only on the stdlib, imapclient and
aiosmtpd. Nothing here is meant for production: no TLS, plaintext passwords, everything on 127.0.0.1.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_pick = random.Random()  # its own generator: tests that seed `random` must not make workers agree


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port free right now, chosen outside the kernel's ephemeral range.

    A port taken with bind(0) comes from the range the kernel also gives to outgoing connections,
    so between our choosing it and the server binding it, any client's connect (maildesk's to
    Dovecot, say) could take it as its local port: CI saw exactly that, EADDRINUSE. Below the
    range only listeners bind, and a random pick makes two test workers choosing the same port
    in the same instant unlikely; the bind check skips ports already listening.
    """
    low, high = _ephemeral_range()
    span = (10000, low) if low - 10000 >= 2000 else (high + 1, 65536)
    for _ in range(200):
        port = _pick.randrange(*span)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine: any free port
        s.bind((HOST, 0))
        return s.getsockname()[1]


_TCP_STATES = {"01": "established", "02": "syn-sent", "06": "time-wait", "08": "close-wait", "0A": "listen"}


def port_users(port: int) -> str:
    """What holds a loopback port, as /proc/net/tcp says (for a bind that failed): states, counted."""
    found: dict[str, int] = {}
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return "unknown"
    for line in lines:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            state = _TCP_STATES.get(fields[3], fields[3])
            found[state] = found.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in found.items()) or "nothing now"


def log_tail(root, names, lines: int = 30) -> str:
    """The last lines of each of a throwaway server's log files that exist, in order (for a
    failing test's message)."""
    out: list[str] = []
    for name in names:
        f = root / name
        if f.exists():
            out += f.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(out)
