"""The retention sweep reaches maildesk's own IMAP folders (issue 17 item 4, docs/privacy.md):
through the real daemon and Dovecot, with the clock moved by freezegun, mail processed at T stays
in maildesk/processed and maildesk/quarantine at T + 1094 days and is gone the day after
T + 1095 days; the inbox keeps its own mail however old; `enabled = false` keeps everything."""
from __future__ import annotations

import json
from datetime import timedelta

from maildesk.service import retention
from tests.integration.test_clock import once_at
from tests.integration.test_sellers import T0
from tests.support import mail

DAYS = 1095
PROCESSED, QUARANTINE = "maildesk/processed", "maildesk/quarantine"


def setup_mail(desk) -> None:
    """One old mail the first start leaves in the inbox, one customer mail processed at T0, one
    held in quarantine at T0, and one processed two days later (not yet due at the end)."""
    desk.write_config(digest={"enabled": False}, mailbox={"first_start_hours": 48})
    desk.deliver(mail(sender="ancien@example.fr", subject="Vieux message"), msg_time=T0 - timedelta(days=10))
    desk.deliver(mail(sender="camille@example.fr", body="Colis perdu, signé Camille Martin."), msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=1))
    desk.deliver(mail(sender="spam@example.net", subject="Retenu"), folder=QUARANTINE, msg_time=T0)
    desk.deliver(mail(sender="later@example.fr", subject="Plus tard"), folder=PROCESSED,
                 msg_time=T0 + timedelta(days=2))
    assert counts(desk) == (1, 2, 1)


def counts(desk) -> tuple[int, int, int]:
    return tuple(desk.dovecot.count(f) for f in ("INBOX", PROCESSED, QUARANTINE))


def senders(desk, folder: str) -> list[str]:
    return sorted(str(m.split(b"\r\nFrom: ", 1)[-1].split(b"\r\n")[0]) for m in desk.dovecot.fetch_all(folder))


def test_mail_leaves_maildesks_folders_the_day_after_the_period_and_the_inbox_keeps_its_own(desk):
    setup_mail(desk)

    once_at(desk, T0 + timedelta(days=DAYS - 1))
    assert counts(desk) == (1, 2, 1)  # a day short: everything kept
    state = json.loads(desk.rows("SELECT value FROM state WHERE key = ?", retention.MAILBOX_KEY)[0]["value"])
    assert state["removed"] == 0 and state["day"]  # the day's sweep ran and found nothing due

    once_at(desk, T0 + timedelta(days=DAYS + 1))
    assert counts(desk) == (1, 1, 0)
    assert "later@example.fr" in senders(desk, PROCESSED)[0]  # two days younger: not yet
    assert "ancien@example.fr" in senders(desk, "INBOX")[0]  # the inbox is never swept, however old
    state = json.loads(desk.rows("SELECT value FROM state WHERE key = ?", retention.MAILBOX_KEY)[0]["value"])
    assert state["removed"] == 2

    app = desk.app()  # the digest's retention line counts them
    try:
        assert retention.summary(app.store, app.cfg, T0 + timedelta(days=DAYS + 1, hours=1))["mail_removed"] == 2
        assert retention.summary(app.store, app.cfg, T0 + timedelta(days=DAYS + 3))["mail_removed"] == 0
    finally:
        app.close()

    once_at(desk, T0 + timedelta(days=DAYS + 3))
    assert counts(desk) == (1, 0, 0)  # the younger one, in its turn


def mailbox_state(desk) -> dict:
    return json.loads(desk.rows("SELECT value FROM state WHERE key = ?", retention.MAILBOX_KEY)[0]["value"])


def test_off_when_retention_is_disabled_and_once_a_day_when_on(desk):
    setup_mail(desk)
    first = mailbox_state(desk)["at"]  # the first pass's sweep, at T0 (nothing due)
    desk.write_config(retention={"enabled": False})
    once_at(desk, T0 + timedelta(days=DAYS + 10))
    assert counts(desk) == (1, 2, 1)
    assert mailbox_state(desk)["at"] == first  # not even looked at

    desk.write_config(retention={"enabled": True})
    day = T0 + timedelta(days=DAYS + 10)
    once_at(desk, day)
    assert counts(desk) == (1, 0, 0)
    desk.deliver(mail(sender="old@example.fr", subject="Vieux"), folder=PROCESSED, msg_time=T0)
    once_at(desk, day + timedelta(hours=2))
    assert counts(desk) == (1, 1, 0)  # swept today already: tomorrow
    once_at(desk, day + timedelta(days=1))
    assert counts(desk) == (1, 0, 0)
