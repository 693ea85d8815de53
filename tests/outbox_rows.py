"""Put mail straight into the outbox table, as the workflow would, for tests of sending."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from maildesk.store.db import iso
from tests.support import SUPPORT, mail


def queue_mail(app, n: int = 1, *, routine: bool = False, kind: str | None = None,
               to: str = "camille@example.fr", complaint_id: int | None = None,
               raw: bytes | str | None = None) -> list[str]:
    """Queue `n` mails due now; returns their Message-IDs. `raw` replaces the mail as stored
    (a str is stored as SQLite TEXT, as a row written by hand would be)."""
    now = datetime.now(timezone.utc)
    ids = []
    with app.store.transaction():
        for _ in range(n):
            message_id = f"<{os.urandom(6).hex()}@imolocale.test>"
            app.store.insert("outbox", {
                "message_id": message_id, "complaint_id": complaint_id,
                "kind": kind or ("update" if routine else "ack"), "audience": "customer",
                "routine": int(routine), "mail_from": SUPPORT, "rcpt": json.dumps([to]),
                "subject": "test", "raw": mail(sender=SUPPORT, to=to, message_id=message_id) if raw is None else raw,
                "status": "queued", "attempts": 0, "next_attempt_at": iso(now), "created_at": iso(now)})
            ids.append(message_id)
    return ids
