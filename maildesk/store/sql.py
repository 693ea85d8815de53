"""SQL fragments more than one store module needs, built from the core's own values
so that a rule is written once (the open statuses are `policy.OPEN_STATUSES`)."""
from __future__ import annotations

from maildesk.core.policy import OPEN_STATUSES


def sql_list(values) -> str:
    """A literal `('a', 'b')` for `IN`: only for the project's own constants, never for input."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


OPEN_IN = sql_list(OPEN_STATUSES)  # "status IN " + OPEN_IN


def recent_ids(message_ids, keep: int = 50) -> tuple[list[str], str]:
    """The last `keep` distinct Message-IDs of a reply's headers (a References chain can be long)
    and their `?` marks for `IN (...)`."""
    ids = list(dict.fromkeys(message_ids))[-keep:]
    return ids, ", ".join("?" for _ in ids)
