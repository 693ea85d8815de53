"""systemd's notify protocol (`Type=notify`, `WatchdogSec=`): ready, alive, stopping."""
from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> None:
    """Tell systemd how the daemon is, so a stuck one is restarted; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), address)
    except OSError:
        pass  # systemd went away: nothing to tell
