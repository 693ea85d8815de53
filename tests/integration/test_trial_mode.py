"""Trial mode on a real inbox: `--dry-run` (or `[mailbox] read_only`) reads
without changing a byte and writes would-be mail to .eml files; and
`import-mbox` loads an old mailbox as history without answering anyone."""
from __future__ import annotations

import mailbox
from datetime import datetime, timezone
from email import message_from_bytes, policy as email_policy
from pathlib import Path

import pytest

from tests.support import SUPPORT, mail


def snapshot(dovecot) -> dict:
    """Everything a mailbox shows over IMAP: folders and their flags, UIDVALIDITY/UIDNEXT,
    and per message its UID, flags, INTERNALDATE and bytes (read with EXAMINE + BODY.PEEK)."""
    state = {}
    with dovecot.client() as c:
        for flags, _sep, name in sorted(c.list_folders(), key=lambda f: f[2]):
            if b"\\Noselect" in flags:
                state[name] = {"flags": flags}
                continue
            info = c.select_folder(name, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"]) if uids else {}
            state[name] = {"flags": flags, "uidvalidity": info[b"UIDVALIDITY"], "uidnext": info[b"UIDNEXT"],
                           "messages": {u: (d[b"FLAGS"], d[b"INTERNALDATE"], d[b"BODY[]"]) for u, d in data.items()}}
            c.unselect_folder()
    return state


def maildir_files(dovecot) -> dict[str, bytes]:
    """The mail files on disk (Dovecot's own index files left out)."""
    root = dovecot.root / "mail"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith("dovecot")}


@pytest.mark.parametrize("how", ["--dry-run", "read_only"])
def test_dry_run_leaves_the_inbox_byte_for_byte_unchanged(desk, how):
    desk.deliver(mail(subject="Colis jamais reçu", message_id="<a@example.fr>"))
    desk.dovecot.append(mail(sender="john@example.com", name="John", subject="Wrong item",
                             body="Hello, the seller sent the wrong teapot. I want a refund."),
                        flags=[b"\\Seen", b"\\Flagged"])
    desk.deliver(mail(sender="news@shop.example", subject="Promo", headers={"Precedence": "bulk"}))
    before, files_before = snapshot(desk.dovecot), maildir_files(desk.dovecot)
    assert "maildesk/processed" not in before

    if how == "read_only":
        desk.write_config(mailbox={"read_only": True})
        result = desk.cli("once")
    else:
        result = desk.cli("once", "--dry-run")
    assert result.returncode == 0, result.stderr

    assert snapshot(desk.dovecot) == before  # same folders (none created), UIDs, flags, dates, bytes
    assert maildir_files(desk.dovecot) == files_before
    assert desk.sink.messages == []  # nothing sent
    written = sorted((desk.dir / "dry-run").glob("*.eml"))
    mails = [message_from_bytes(p.read_bytes(), policy=email_policy.default) for p in written]
    to = [str(m["To"]) for m in mails]
    assert "camille@example.fr" in " ".join(to) and "john@example.com" in " ".join(to)
    assert all(m["From"] and SUPPORT in str(m["From"]) and m["Message-ID"] for m in mails)
    assert len(desk.rows("SELECT * FROM complaints")) == 2
    assert {r["status"] for r in desk.rows("SELECT status FROM outbox")} == {"dry-run"}

    again = desk.cli("once") if how == "read_only" else desk.cli("once", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert sorted((desk.dir / "dry-run").glob("*.eml")) == written  # seen once, not twice
    assert snapshot(desk.dovecot) == before


def takeout(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(str(path))
    for raw in messages:
        box.add(mailbox.mboxMessage(raw))
    box.flush()
    box.close()
    return path


def test_import_mbox_builds_history_and_answers_nobody(desk):
    t = lambda d: datetime(2025, 3, d, 9, 30, tzinfo=timezone.utc)  # noqa: E731
    first = mail(subject="Colis jamais reçu", message_id="<first@example.fr>", date=t(1),
                 body="Bonjour, ma commande n° 784512 n'est jamais arrivée.")
    reply = mail(subject="Re: Colis jamais reçu", message_id="<reply@example.fr>", date=t(2),
                 in_reply_to="<first@example.fr>", references="<first@example.fr>", body="Toujours rien.")
    other = mail(sender="john@example.com", name="John", subject="Broken teapot", date=t(5),
                 message_id="<john@example.com>", body="Hello, my teapot arrived broken.")
    robot = mail(sender="news@shop.example", subject="Promo", headers={"Precedence": "bulk"}, date=t(3))
    path = takeout(desk.dir / "Takeout.mbox", [reply, robot, other, first])  # not in date order

    result = desk.cli("import-mbox", str(path))
    assert result.returncode == 0, result.stderr
    assert "4 message(s) read: 2 complaint(s) created" in result.stdout and "Nothing was sent" in result.stdout
    assert "importing" not in result.stderr  # no progress bar without a terminal

    complaints = desk.rows("SELECT * FROM complaints ORDER BY first_contact")
    assert [c["customer_addr"] for c in complaints] == ["camille@example.fr", "john@example.com"]
    assert complaints[0]["first_contact"].startswith("2025-03-01")
    assert all(c["next_due"] is None for c in complaints)  # no escalation fires for old deadlines
    thread = desk.rows("SELECT message_id FROM messages WHERE complaint_id = ? ORDER BY at", complaints[0]["id"])
    assert [m["message_id"] for m in thread] == ["<first@example.fr>", "<reply@example.fr>"]
    assert desk.rows("SELECT * FROM outbox") == []
    kinds = [e["kind"] for e in desk.rows("SELECT kind FROM events WHERE complaint_id = ?", complaints[0]["id"])]
    assert "not_sent" in kinds and "imported" in kinds

    again = desk.cli("import-mbox", str(path))
    assert "0 complaint(s) created, 4 already known" in again.stdout

    desk.deliver(first)  # the same mail still sits in the live inbox
    desk.once()
    assert len(desk.rows("SELECT * FROM complaints")) == 2
    assert desk.sink.messages == []  # imported history is never answered
    assert desk.folder("INBOX") == 0 and desk.folder("maildesk/processed") == 1


def test_import_mbox_of_a_missing_file_fails_cleanly(desk):
    result = desk.cli("import-mbox", str(desk.dir / "nope.mbox"))
    assert result.returncode == 1 and "is not a file" in result.stderr


def test_import_mbox_shows_progress_on_a_terminal_only(desk, capsys):
    from maildesk.service.importer import import_mbox
    path = takeout(desk.dir / "small.mbox", [mail(message_id=f"<p{i}@example.fr>") for i in range(3)])
    app = desk.app()
    try:
        assert import_mbox(app, path, progress=True).messages == 3
    finally:
        app.close()
    err = capsys.readouterr().err
    assert "importing" in err and "3/3" in err
