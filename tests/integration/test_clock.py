"""The policy clock through the real daemon, Dovecot and SMTP, with time moved by freezegun."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time

from maildesk.daemon import Daemon
from tests.integration.conftest import body
from tests.integration.test_intake import ref_of
from tests.support import mail

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def once_at(desk, when: datetime) -> list:
    """Run `once` in-process at a frozen moment; return the mails it sent."""
    before = len(desk.sink.messages)
    with freeze_time(when, real_asyncio=True):
        desk.run_once()
    return desk.sent()[before:]


def who(mails) -> list[str]:
    return sorted(str(m["To"]) for m in mails)


def open_complaint(desk, **kw) -> str:
    desk.deliver(mail(**kw), msg_time=T0)
    sent = once_at(desk, T0 + timedelta(minutes=1))
    return ref_of(next(m for m in sent if "camille" in str(m["To"])))


def test_walk_level_1_to_2_to_3_then_resolved_and_rated(desk):
    ref = open_complaint(desk)
    row = desk.rows("SELECT first_contact FROM complaints")[0]
    assert row["first_contact"] == "2026-11-23T09:00:00+00:00"  # when it reached the inbox

    assert once_at(desk, T0 + 24 * H - timedelta(minutes=1)) == []
    sent = once_at(desk, T0 + 24 * H)
    assert who(sent) == ["camille@example.fr", "resolution@imolocale.test"]
    assert "équipe de résolution" in body(next(m for m in sent if "camille" in str(m["To"])))
    assert once_at(desk, T0 + 24 * H) == []  # twice at the same moment: nothing more

    sent = once_at(desk, T0 + 42 * H)
    assert who(sent) == ["resolution@imolocale.test"] and "Rappel" in str(sent[0]["Subject"])
    assert once_at(desk, T0 + 48 * H - timedelta(minutes=1)) == []
    sent = once_at(desk, T0 + 48 * H)
    assert who(sent) == ["camille@example.fr", "cx@imolocale.test"]
    assert "dernier niveau" in body(next(m for m in sent if "camille" in str(m["To"])))

    with freeze_time(T0 + 50 * H, real_asyncio=True):
        code, _ = desk.cli_here("resolve", ref, "--note", "Le vendeur vous rembourse 45 €.")
    assert code == 0
    [resolution] = desk.sent()[-1:]
    assert "45 €" in body(resolution) and "de 1" in body(resolution)

    desk.deliver(mail(subject=f"Re: [{ref}] Colis jamais reçu", body="4/5, merci"), msg_time=T0 + 51 * H)
    sent = once_at(desk, T0 + 51 * H)
    assert who(sent) == ["camille@example.fr"] and "Merci pour votre réponse" in body(sent[0])
    row = desk.rows("SELECT status, level, rating FROM complaints")[0]
    assert (row["status"], row["level"], row["rating"]) == ("closed", 3, 4)

    with freeze_time(T0 + 52 * H):
        code, shown = desk.cli_here("show", ref)
    assert code == 0
    for needle in ("escalated", "level=2", "level=3", "resolved", "rated", "closed", "[   met]", "[missed]"):
        assert needle in shown, needle


def test_three_days_down_means_one_escalation_and_one_mail(desk):
    open_complaint(desk)
    sent = once_at(desk, T0 + 72 * H)
    assert who(sent) == ["camille@example.fr", "cx@imolocale.test"]
    row = desk.rows("SELECT level FROM complaints")[0]
    assert row["level"] == 3
    assert once_at(desk, T0 + 72 * H + timedelta(minutes=1)) == []


def test_resolved_in_the_first_hour_never_escalates(desk):
    ref = open_complaint(desk)
    with freeze_time(T0 + 30 * timedelta(minutes=1), real_asyncio=True):
        assert desk.cli_here("resolve", ref)[0] == 0
    for hours in (24, 48, 120):
        sent = once_at(desk, T0 + hours * H)
        assert all("cx@" not in str(m["To"]) and "resolution@" not in str(m["To"]) for m in sent)
    assert desk.rows("SELECT level FROM complaints")[0]["level"] == 1


def test_dissatisfied_answer_reopens_escalates_and_notifies(desk):
    ref = open_complaint(desk)
    with freeze_time(T0 + 2 * H, real_asyncio=True):
        assert desk.cli_here("resolve", ref)[0] == 0
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body="Pas satisfait du tout."), msg_time=T0 + 3 * H)
    sent = once_at(desk, T0 + 3 * H)
    assert who(sent) == ["camille@example.fr", "resolution@imolocale.test"]
    row = desk.rows("SELECT status, level FROM complaints")[0]
    assert (row["status"], row["level"]) == ("open", 2)


def test_no_satisfaction_answer_reminder_then_closed(desk):
    ref = open_complaint(desk)
    with freeze_time(T0 + 2 * H, real_asyncio=True):
        assert desk.cli_here("resolve", ref)[0] == 0
    assert once_at(desk, T0 + 2 * H + timedelta(days=3) - timedelta(minutes=1)) == []
    sent = once_at(desk, T0 + 2 * H + timedelta(days=3))
    assert who(sent) == ["camille@example.fr"] and "Votre avis compte" in body(sent[0])
    assert once_at(desk, T0 + 2 * H + timedelta(days=6)) == []
    assert desk.rows("SELECT status FROM complaints")[0]["status"] == "closed"


def test_daily_updates_while_open(desk):
    open_complaint(desk)
    customer_mails = []
    for hours in range(1, 5 * 24 + 1):
        for m in once_at(desk, T0 + hours * H) if hours % 12 == 0 else []:
            if "camille" in str(m["To"]):
                customer_mails.append(hours)
    assert customer_mails == [24, 48, 72, 96, 120]


READ_ONLY = """
import sys
from maildesk.cli.main import main
for command in (["list"], ["show", sys.argv[2]], ["list", "--json"]):
    assert main(["--config", sys.argv[1], *command]) == 0, command
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("imapclient", "schedule") or m == "maildesk.daemon")
assert not loaded, loaded
"""


def test_read_commands_take_the_time_from_the_clock_not_the_daemon(desk):
    """`show` and `list` load neither the daemon nor an IMAP library (maildesk.clock gives the time)."""
    import subprocess
    import sys
    desk.deliver(mail())
    desk.once()
    [row] = desk.rows("SELECT ref FROM complaints")
    result = subprocess.run([sys.executable, "-c", READ_ONLY, str(desk.config), row["ref"]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert row["ref"] in result.stdout


def test_the_app_hands_out_one_clock_that_freezegun_moves(desk):
    app = desk.app()
    try:
        with freeze_time(T0):
            assert app.clock.now() == T0 and Daemon(app).clock is app.clock
    finally:
        app.close()
