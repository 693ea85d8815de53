"""Gmail's sending limits and answers, against the real aiosmtpd sink, with
time moved by freezegun: routine mail waits near the daily limit while
acknowledgements still go, nothing queued is lost, temporary refusals are
retried with back-off and permanent ones are recorded on the complaint."""
from __future__ import annotations

import itertools
import json
import logging
import re
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from maildesk.core.sending import tier
from maildesk.store.outbox import TIER_SQL
from tests.integration.conftest import body
from tests.outbox_rows import queue_mail
from tests.support import SUPPORT, mail

T0 = "2026-11-24 08:00:00"


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def app(desk):
    desk.write_config(smtp={"daily_limit": 10, "reserve": 3})
    application = desk.app()
    yield application
    application.close()


def statuses(app) -> dict[str, int]:
    return dict(app.store.all("SELECT status, count(*) FROM outbox GROUP BY status"))


def test_daily_limit_holds_routine_mail_for_the_reserve_and_loses_nothing(app, desk, events):
    with freeze_time(T0, real_asyncio=True) as frozen:
        queue_mail(app, 8, routine=True)
        result = app.outbox.flush(now())
        assert (result.sent, result.held) == (7, 1)  # 10 - 7 = 3 left: the reserve, not for routine mail
        assert app.outbox.sending_status(now()) == {"limit": 10, "reserve": 3, "sent_last_24h": 7, "held": 1,
                                                    "sent_elsewhere": 0, "paused": None}

        queue_mail(app, 3, kind="ack")  # acknowledgements may use the reserve
        result = app.outbox.flush(now())
        assert (result.sent, result.held) == (3, 1)
        queue_mail(app, 1, kind="ack")  # the limit itself is never crossed
        assert app.outbox.flush(now()).sent == 0
        assert len(desk.sink.messages) == 10
        assert statuses(app) == {"sent": 10, "queued": 2}
        assert app.outbox.sending_status(now())["held"] == 2
        assert any(getattr(r, "event", "") == "sending_limit" and r.levelno == logging.WARNING for r in events)

        frozen.tick(timedelta(hours=23, minutes=59))
        assert app.outbox.flush(now()).sent == 0  # still inside the 24 h window
        frozen.tick(timedelta(minutes=1, seconds=1))
        result = app.outbox.flush(now())
        assert (result.sent, result.held) == (2, 0)
    assert statuses(app) == {"sent": 12}
    assert len(desk.sink.messages) == 12
    kind_of = {r["message_id"]: r["kind"] for r in app.store.all("SELECT message_id, kind FROM outbox")}
    last_two = [kind_of[m["Message-ID"]] for m in desk.sent()[-2:]]
    assert last_two == ["ack", "update"]  # after the wait, the acknowledgement first


def test_gmail_temporary_refusal_is_retried_with_backoff(app, desk):
    desk.sink.fail_next(2, code=454, message="4.7.0 Try again later")
    with freeze_time(T0, real_asyncio=True) as frozen:
        queue_mail(app)
        assert app.outbox.flush(now()).retry == 1
        [row] = app.store.all("SELECT status, attempts, next_attempt_at, last_error FROM outbox")
        assert (row["status"], row["attempts"]) == ("queued", 1) and "454 4.7.0 Try again later" in row["last_error"]
        assert row["next_attempt_at"] == "2026-11-24T08:00:30+00:00"
        assert app.outbox.flush(now()).retry == 0  # not due yet
        frozen.tick(30)
        assert app.outbox.flush(now()).retry == 1
        [row] = app.store.all("SELECT attempts, next_attempt_at FROM outbox")
        assert row["next_attempt_at"] == "2026-11-24T08:01:30+00:00"  # 60 s: backing off
        frozen.tick(60)
        assert app.outbox.flush(now()).sent == 1
    assert len(desk.sink.messages) == 1 and statuses(app) == {"sent": 1}


def test_421_stops_the_batch_and_keeps_the_rest_queued(app, desk):
    desk.sink.fail_next(1, code=421, message="4.7.0 Temporary System Problem. Try again later")
    with freeze_time(T0, real_asyncio=True) as frozen:
        queue_mail(app, 3)
        result = app.outbox.flush(now())
        assert result.sent == 0 and result.retry == 1
        assert [r["attempts"] for r in app.store.all("SELECT attempts FROM outbox ORDER BY id")] == [1, 0, 0]
        frozen.tick(30)
        assert app.outbox.flush(now()).sent == 3
    assert len(desk.sink.messages) == 3


@pytest.mark.parametrize("at", ["RCPT", "DATA"])  # Gmail answers its daily limit to RCPT TO or after DATA
def test_gmail_daily_limit_pauses_all_sending_and_probes_once_an_hour(app, desk, events, at):
    """Issue 13 item 4: after 550 5.4.5 every flush logged in again and tried the next row."""
    desk.sink.refuse_all(550, "5.4.5 Daily user sending limit exceeded. For more information go to "
                              "https://support.google.com/a/answer/166852", at=at)
    with freeze_time(T0, real_asyncio=True) as frozen:
        queue_mail(app, 3)
        result = app.outbox.flush(now())
        assert (result.sent, result.retry, result.failed) == (0, 1, 0)  # waited out, never failed
        assert desk.sink.connections == 1
        assert [r.levelno for r in events if getattr(r, "event", "") == "sending_paused"] == [logging.ERROR]
        for minutes in (1, 10, 48):  # the daemon flushes often: no login, no send until the probe
            frozen.tick(timedelta(minutes=minutes))
            assert app.outbox.flush(now()).held == 2  # the refused mail waits for the probe
        assert desk.sink.connections == 1 and statuses(app) == {"queued": 3}
        assert [r["attempts"] for r in app.store.all("SELECT attempts FROM outbox ORDER BY id")] == [1, 0, 0]

        code, shown = desk.cli_here("status", "--no-connect")
        assert "PAUSED      all sending since 2026-11-24 09:00 +01:00: Gmail's daily limit (550 5.4.5 Daily user " \
               "sending limit exceeded." in shown and "next try 2026-11-24 10:00 +01:00" in shown  # Europe/Paris
        assert "sending paused by Gmail's daily limit since 2026-11-24 09:00 +01:00" in shown
        assert "2 held by the pause" in shown
        code, digest = desk.cli_here("digest")
        assert "ENVOI EN PAUSE depuis le 24/11 09:00 : limite quotidienne de Gmail (550 5.4.5" in digest
        assert "Prochain essai le 24/11 10:00" in digest and "2 courriels retenus par la pause" in digest

        frozen.tick(timedelta(minutes=1))  # 09:00 UTC: the probe, one mail; Gmail still refuses
        result = app.outbox.flush(now())
        assert (result.sent, result.retry) == (0, 1) and desk.sink.connections == 2
        assert app.outbox.paused() == {"since": "2026-11-24T08:00:00+00:00", "next_probe": "2026-11-24T10:00:00+00:00",
                                       "error": app.outbox.paused()["error"]}
        frozen.tick(timedelta(minutes=30))
        assert app.outbox.flush(now()).sent == 0 and desk.sink.connections == 2

        desk.sink.accept_all()  # Gmail lifts the limit
        frozen.tick(timedelta(minutes=30))
        result = app.outbox.flush(now())  # the probe goes through, and the rest with it
        assert (result.sent, result.failed) == (3, 0) and statuses(app) == {"sent": 3}
        assert app.outbox.paused() is None and app.outbox.sending_status(now())["paused"] is None
        assert desk.sink.connections == 4  # 1 refused, 1 refused probe, the good probe, the rest


def test_permanent_refusal_is_recorded_on_the_complaint(desk):
    desk.sink.refuse_all(550, "5.1.1 The email account that you tried to reach does not exist.")
    desk.deliver(mail(sender="nobody@example.fr", message_id="<lost@example.fr>"))
    desk.once()
    rows = desk.rows("SELECT kind, status, last_error FROM outbox ORDER BY id")
    assert rows and all(r["status"] == "failed" for r in rows)
    assert "550" in rows[0]["last_error"] and "5.1.1" in rows[0]["last_error"]
    [complaint] = desk.rows("SELECT id, ref FROM complaints")
    failures = desk.rows("SELECT detail FROM events WHERE complaint_id = ? AND kind = 'send_failed'", complaint["id"])
    assert len(failures) == len([r for r in rows])
    shown = desk.cli("show", complaint["ref"])
    assert shown.returncode == 0 and "send_failed" in shown.stdout
    desk.sink.accept_all()
    desk.once()
    assert desk.sink.messages == []  # failed stays failed until an admin retries; no surprise resend


def test_permanent_refusal_then_acknowledgement_text_is_intact(desk):
    """A refused mail keeps its full text for an admin's retry."""
    desk.sink.refuse_all(550)
    desk.deliver(mail(subject="Colis abîmé"))
    desk.once()
    desk.sink.accept_all()
    app = desk.app()
    try:
        assert app.outbox.retry(now()) >= 1
        app.outbox.flush(now())
    finally:
        app.close()
    [ack] = desk.sent(to="camille@example.fr")
    assert re.search(r"\[IMO-[0-9A-Z]{6}\] Colis abîmé", str(ack["Subject"])) and body(ack)


def test_outsiders_cannot_spend_the_days_sending(desk):
    """Issue 12, finding 11: 20 complaints from attacker+N@evil.test used all 40 sends of the day;
    counted by mailbox, they cost the caps' worth and one coalesced notice and alert."""
    desk.write_config(smtp={"daily_limit": 40, "reserve": 5})
    for i in range(20):
        desk.deliver(mail(sender=f"attacker+{i}@evil.test", name="A", subject=f"Colis {i}"))
    desk.deliver(mail(sender="genuine@example.fr", name="Genuine", subject="Colis jamais reçu"))
    desk.once()
    kinds = [r["kind"] for r in desk.rows("SELECT kind FROM outbox WHERE rcpt LIKE '%evil.test%' "
                                          "OR audience != 'customer'")]
    assert desk.sent(to="genuine@example.fr"), "the genuine customer was not acknowledged"
    assert len([m for m in desk.sent() if "attacker" in str(m["To"])]) == 5  # max_auto_replies_per_hour
    assert kinds.count("alert") == 1
    assert len(desk.sent()) == 5 + 5 + 1 + 1 + 2  # acks, notifications, flood notice, alert; the genuine pair
    assert desk.rows("SELECT count(*) n FROM outbox WHERE status != 'sent'")[0]["n"] == 0
    assert len(desk.rows("SELECT * FROM complaints")) == 21  # every message kept


# --- recipients are what counts (issue 13 item 4) -----------------------------------------------

TEAM_OF_4 = [f"agent{i}@imolocale.test" for i in range(4)]


def test_a_new_complaint_with_a_team_of_4_costs_5_recipients(desk):
    desk.write_config(teams={"customer_service": TEAM_OF_4})
    desk.deliver(mail(sender="camille@example.fr"))
    desk.once()
    assert sorted(len(c.rcpt_tos) for c in desk.sink.messages) == [1, 4]  # the ack, one notification to all 4
    status = json.loads(desk.cli("status", "--json", "--no-connect").stdout)
    assert status["outbox"]["sent_last_24h"] == 5  # was 2: mails, not recipients


def test_the_daily_limit_holds_counted_by_recipients(desk):
    desk.write_config(teams={"customer_service": TEAM_OF_4}, smtp={"daily_limit": 10, "reserve": 3})
    for i in range(3):
        desk.deliver(mail(sender=f"client{i}@example.fr", subject=f"Colis {i}"))
    desk.once()
    # 3 acks (3 recipients), then one notification to 4 (7 of 10: the reserve is left); the other two wait whole
    assert sorted(len(c.rcpt_tos) for c in desk.sink.messages) == [1, 1, 1, 4]
    rows = desk.rows("SELECT kind, status, json_array_length(rcpt) n FROM outbox ORDER BY id")
    assert [(r["kind"], r["n"]) for r in rows if r["status"] == "queued"] == [("notify", 4), ("notify", 4)]
    status = json.loads(desk.cli("status", "--json", "--no-connect").stdout)["outbox"]
    assert (status["sent_last_24h"], status["held"]) == (7, 2)

    app = desk.app()
    try:
        with freeze_time(now() + timedelta(hours=24, minutes=1), real_asyncio=True):
            assert app.outbox.flush(now()).sent == 1  # a new day: 4 of 10, and the next 4 would eat the reserve
    finally:
        app.close()
    assert [len(c.rcpt_tos) for c in desk.sink.messages][-1] == 4 and len(desk.sink.messages) == 5


def test_staff_sending_from_the_gmail_web_eats_the_budget(desk):
    desk.write_config(mailbox={"sent_folder": "auto"}, smtp={"daily_limit": 10, "reserve": 3})
    desk.once()  # the first look at Sent: from here on
    web = mail(sender=SUPPORT, to="a@example.fr, b@example.fr", subject="Re: votre colis",
               headers={"Cc": "c@example.fr", "Bcc": "d@example.fr, e@example.fr, f@example.fr, A@example.fr"},
               message_id="<web@mail.gmail.com>")
    desk.deliver(web, folder="Sent")  # staff wrote to 6 people from Gmail's web page
    desk.once()
    status = json.loads(desk.cli("status", "--json", "--no-connect").stdout)["outbox"]
    assert (status["sent_last_24h"], status["sent_elsewhere"]) == (6, 6)

    desk.deliver(mail(sender="camille@example.fr"))
    desk.once()  # 4 left: the ack goes, the notification would eat the reserve
    assert [c.rcpt_tos for c in desk.sink.messages] == [["camille@example.fr"]]
    [ack] = desk.rows("SELECT message_id, raw FROM outbox WHERE kind = 'ack'")
    desk.deliver(ack["raw"], folder="Sent")  # Gmail files our own mail in Sent too: counted once, as ours
    desk.once()
    status = json.loads(desk.cli("status", "--json", "--no-connect").stdout)["outbox"]
    assert (status["sent_last_24h"], status["sent_elsewhere"], status["held"]) == (7, 6, 1)
    assert "7/10 recipients in 24 h (6 by staff from the mailbox itself), 1 held by the daily limit" in \
        desk.cli("status", "--no-connect").stdout


def test_a_team_gmail_cannot_reach_in_one_mail_is_refused_by_check(desk):
    desk.write_config(teams={"resolution": [f"r{i}@imolocale.test" for i in range(101)]})
    result = desk.cli("check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "teams.resolution has 101 addresses; Gmail takes at most 100 recipients in one mail" in result.stderr


def test_the_sql_rule_agrees_with_tier():
    conn = sqlite3.connect(":memory:")
    kinds = ["ack", "relay", "ask", "resolution", "notify", "update", "alert", "digest", "outreach"]
    for kind, audience, routine in itertools.product(kinds, ["customer", "staff", "admin", "seller"], [0, 1]):
        got = conn.execute(f"SELECT {TIER_SQL} FROM (SELECT ? AS kind, ? AS audience, ? AS routine)",
                           (kind, audience, routine)).fetchone()[0]
        assert got == tier(kind, audience, bool(routine)), (kind, audience, routine)
