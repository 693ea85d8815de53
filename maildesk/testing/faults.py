"""Named points where the fault-injection tests kill the process.

With MAILDESK_KILL_AT=N set, the N-th call to `step()` (counting every
named point in order) ends the process with SIGKILL, exactly as a power cut
or the OOM killer would. MAILDESK_KILL_SIGNAL names another signal for that
moment (SIGINT: an admin's Ctrl-C; SIGSTOP: the process held there while the
test breaks something, then SIGCONT). Without them, `step()` costs one comparison.
"""
from __future__ import annotations

import os
import signal

_KILL_AT = int(os.environ.get("MAILDESK_KILL_AT", "0") or 0)
_SIGNAL = getattr(signal, os.environ.get("MAILDESK_KILL_SIGNAL", "SIGKILL"))
_count = 0


def step(name: str) -> None:
    global _count
    if not _KILL_AT:
        return
    _count += 1
    if _count == _KILL_AT:
        trace = os.environ.get("MAILDESK_KILL_TRACE")
        if trace:
            with open(trace, "a") as f:
                f.write(f"{_count} {name}\n")
        os.kill(os.getpid(), _SIGNAL)
