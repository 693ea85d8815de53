"""What an admin sees on screen, through the real `maildesk` command (issue 14 items 8 and 10):
one time zone (the configured one, with its offset) in every command's output and UTC in
--json; `check` refusing placeholders and naming DNS; the smaller command-line fixes."""
from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from maildesk.testing.localstack import free_port
from tests.integration.test_intake import ref_of
from tests.support import mail

ZONE = "Asia/Kolkata"  # +05:30: an offset no UTC time and no Paris time can show by chance


def on_screen(iso_utc: str) -> str:
    t = datetime.fromisoformat(iso_utc).astimezone(ZoneInfo(ZONE))
    return t.strftime("%Y-%m-%d %H:%M") + " +05:30"


def test_every_screen_shows_the_configured_zone_with_its_offset_and_json_keeps_utc(desk):
    desk.write_config(policy={"timezone": ZONE})
    desk.deliver(mail(subject="Colis jamais reçu"))
    desk.once()
    ref = ref_of(desk.sent(to="camille@example.fr")[0])
    [row] = desk.rows("SELECT first_contact FROM complaints")
    first = row["first_contact"]

    [listed] = json.loads(desk.cli("list", "--json").stdout)
    assert listed["first_contact"] == first and first.endswith("+00:00")  # --json: UTC ISO-8601
    lines = desk.cli("list").stdout.splitlines()
    assert lines[0].startswith(ref) and f" {on_screen(first)}  camille@example.fr" in lines[0]

    shown = desk.cli("show", ref).stdout
    assert f"first contact: {on_screen(first)}" in shown
    timeline = shown.split("Timeline:\n")[1].splitlines()
    stamps = [line[2:25] for line in timeline if not line.startswith(" " * 21)]
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d \+05:30", s) for s in stamps), timeline
    deadlines = shown.split("Deadlines:\n")[1].split("\n\n")[0].splitlines()
    assert len(deadlines) == 3 and all(" +05:30  " in line for line in deadlines)
    status = desk.cli("status", "--no-connect").stdout
    assert "+05:30" in status.split("last poll")[1].splitlines()[0]
    assert "+05:30  24h " in status.split("next deadlines")[1]
    assert "(heure Asia/Kolkata, +05:30)" in desk.cli("digest").stdout

    desk.write_config(smtp={"port": free_port()})  # the next mail waits in the outbox
    desk.deliver(mail(sender="jean@example.fr", subject="Remboursement"))
    desk.cli("once")
    waiting = desk.cli("outbox").stdout
    assert "next try " in waiting and "+05:30" in waiting.split("next try ")[1].splitlines()[0]
    [queued, *_] = json.loads(desk.cli("outbox", "--json").stdout)
    assert queued["next_attempt_at"].endswith("+00:00")

    if desk.pg is None:  # backup is SQLite's (PostgreSQL: pg_dump)
        backup = desk.dir / "copy.db"
        assert "+05:30, newest handled mail" in desk.cli("backup", str(backup)).stdout


def test_config_works_after_the_command_too(desk):
    desk.once()
    run = subprocess.run([sys.executable, "-m", "maildesk", "list", "--config", str(desk.config)],
                         capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0 complaint(s)"


def test_check_refuses_an_empty_first_team_and_placeholder_addresses(desk):
    desk.write_config(teams={"customer_service": [], "admins": ["admin@imolocale.example", "boss@imolocale.test"]},
                      digest={"to": ["direction@example.com"]})
    result = desk.cli("check")
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL  config")]
    assert fails == [
        "FAIL  config       teams.customer_service is empty: new complaints would notify nobody",
        "FAIL  config       teams.admins holds admin@imolocale.example: a placeholder (example domain), "
        "not a real address; put the real one",
        "FAIL  config       digest.to holds direction@example.com: a placeholder (example domain), "
        "not a real address; put the real one"]


def test_check_says_a_host_name_that_cannot_be_resolved_is_dns(desk):
    desk.write_config(mailbox={"host": "imap.maildesk-test.invalid"})
    result = desk.cli("check", "--timeout", "5")
    assert result.returncode == 1
    assert ("hint: the host name imap.maildesk-test.invalid could not be resolved (DNS): check mailbox.host"
            in result.stdout)
    assert "not a known host name" not in result.stdout


def test_resolve_records_the_login_name_as_the_actor(desk):
    desk.deliver(mail())
    desk.once()
    ref = ref_of(desk.sent(to="camille@example.fr")[0])
    assert desk.cli("resolve", ref, "--note", "Remboursé.").returncode == 0
    [event] = desk.rows("SELECT actor FROM events WHERE kind = 'resolved'")
    assert event["actor"] == getpass.getuser() != "cli"


def test_digest_send_honours_json(desk):
    desk.once()
    result = desk.cli("digest", "--send", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["sent"] is True and doc["to"] == ["admin@imolocale.test"] and doc["message_id"].startswith("<")


def test_outbox_retry_all_with_nothing_to_do_is_not_a_failure(desk):
    desk.once()
    result = desk.cli("outbox", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no waiting or failed mail: nothing to retry"
    assert desk.cli("outbox", "--retry", "999").returncode == 1  # a named mail that is not there still is
