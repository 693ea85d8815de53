"""How a moment is shown to people: one format for every command's screen output.

The database and `--json` keep UTC ISO-8601; a person reads the configured
`[policy] timezone` with its offset, so a time is never ambiguous (the logs
and the mails use the same zone)."""
from __future__ import annotations

from datetime import datetime


def local(value: datetime | str | None, tz) -> str:
    """`2026-11-24 09:12 +01:00` in `tz`; "-" for no time. Accepts the store's ISO text too."""
    if not value:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    offset = moment.astimezone(tz).strftime("%z")
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M ") + f"{offset[:3]}:{offset[3:]}"


def zone(value: datetime, tz) -> str:
    """`Europe/Paris, +01:00`: for a heading when the times below it carry no offset (the digest)."""
    return f"{tz.key}, {local(value, tz).rpartition(' ')[2]}"
