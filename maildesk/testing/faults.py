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

_kill_at: int | None = None  # read from the environment at the first step, not at import
_count = 0


def step(name: str) -> None:
    global _count, _kill_at
    if _kill_at is None:
        _kill_at = int(os.environ.get("MAILDESK_KILL_AT", "0") or 0)
    if not _kill_at:
        return
    _count += 1
    if _count == _kill_at:
        trace = os.environ.get("MAILDESK_KILL_TRACE")
        if trace:
            with open(trace, "a") as f:
                f.write(f"{_count} {name}\n")
        os.kill(os.getpid(), getattr(signal, os.environ.get("MAILDESK_KILL_SIGNAL", "SIGKILL")))
