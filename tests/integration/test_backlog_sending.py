"""A backlog goes out over several SMTP connections ([smtp] connections), each mail once;
a few mails over one. Marks are committed without waiting for the disk, and every
MARK_SYNC_EVERY-th one waits (outbox.py)."""
from __future__ import annotations

from collections import Counter
from email import message_from_bytes

import pytest

from maildesk.adapters import outbox as outbox_module
from maildesk.daemon import Daemon
from maildesk.adapters.connect import smtp_client
from tests.support import mail


def message_id(raw: bytes) -> str:
    return "".join(str(message_from_bytes(raw)["Message-ID"]).split())


class Clients(list):
    """Every SMTP client the outbox makes, to count connections: the app's `smtp_client` hook."""

    def __call__(self, sec):
        client = smtp_client(sec)
        self.append(client)
        return client


@pytest.fixture
def clients():
    return Clients()


def deliver(desk, n: int) -> None:
    desk.write_config(digest={"enabled": False})
    for i in range(n):
        desk.deliver(mail(sender=f"b{i}@example.fr", message_id=f"<b{i}@example.fr>"))


def test_a_backlog_goes_out_over_several_connections_each_mail_once(desk, clients):
    deliver(desk, 60)  # 120 mails: an acknowledgement and a staff notification each
    desk.run_once(smtp_client=clients)
    captured = Counter(message_id(c.data) for c in desk.sink.messages)
    rows = desk.rows("SELECT message_id, status, attempts FROM outbox")
    assert len(rows) == 120 and {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}
    assert sorted(captured) == sorted(r["message_id"] for r in rows) and set(captured.values()) == {1}
    assert len(clients) == 3  # [smtp] connections


def test_a_few_mails_go_over_one_connection(desk, clients):
    deliver(desk, 5)
    desk.run_once(smtp_client=clients)
    assert len(desk.sink.messages) == 10 and len(clients) == 1


def test_a_421_on_one_connection_stops_them_all_and_nothing_is_lost_or_doubled(desk, clients):
    deliver(desk, 60)
    desk.sink.fail_next(1, code=421, message="4.7.0 too busy, closing")
    desk.run_once(smtp_client=clients)
    rows = desk.rows("SELECT status, attempts FROM outbox")
    refused = [r for r in rows if r["status"] == "queued" and r["attempts"] == 1]
    assert len(refused) == 1
    assert len(desk.sink.messages) < 119  # the others stopped after the mail in hand
    desk.run_once(smtp_client=clients)  # the untried ones go now; the refused one waits for its back-off
    with desk.db() as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE status = 'queued'")
    desk.run_once(smtp_client=clients)
    captured = Counter(message_id(c.data) for c in desk.sink.messages)
    assert len(captured) == 120 and set(captured.values()) == {1}
    assert {r["status"] for r in desk.rows("SELECT status FROM outbox")} == {"sent"}


def test_a_further_connection_the_server_turns_away(desk):
    """The server refuses the second and third connection (Gmail: too many connections)."""
    import aiosmtplib
    seen = []

    def turned_away_after_the_first(sec):  # the app's `smtp_client` hook
        client = smtp_client(sec)
        seen.append(client)
        if len(seen) > 1:
            async def refuse(*args, **kwargs):
                raise aiosmtplib.SMTPConnectError("421 4.7.0 Too many concurrent SMTP connections")
            client.connect = refuse
        return client
    deliver(desk, 40)
    desk.run_once(smtp_client=turned_away_after_the_first)
    captured = Counter(message_id(c.data) for c in desk.sink.messages)
    assert len(captured) == 80 and set(captured.values()) == {1} and len(seen) == 3


def sync(store) -> str:
    """Whether a commit waits for the disk now: SQLite's synchronous, PostgreSQL's synchronous_commit."""
    if store.kind == "postgresql":
        return {"on": "full", "off": "relaxed"}[store.scalar("SHOW synchronous_commit")]
    return {2: "full", 1: "relaxed"}[store.scalar("PRAGMA synchronous")]


def test_marks_are_durable_every_few_and_the_connection_stays_full(desk):
    deliver(desk, 20)
    app = desk.app()
    try:
        durable_seen = []
        real = app.store.transaction

        def watching(durable=True):
            durable_seen.append(durable)
            return real(durable)
        app.store.transaction = watching
        Daemon(app).once()
        app.store.transaction = real
        assert sync(app.store) == "full"  # again, after the relaxed marks
    finally:
        app.close()
    relaxed = durable_seen.count(False)
    # one "in flight" mark per mail, which never waits for the disk (a power cut loses at most the
    # Sent-folder lookup for it), and the "sent" marks, of which one in MARK_SYNC_EVERY waits
    assert relaxed == 40 + 40 - 40 // outbox_module.MARK_SYNC_EVERY


def test_a_relaxed_transaction_restores_full_sync_after_an_error(desk):
    app = desk.app()
    try:
        with pytest.raises(RuntimeError):
            with app.store.transaction(durable=False):
                assert sync(app.store) == "relaxed"
                raise RuntimeError("boom")
        assert sync(app.store) == "full"
        assert not app.store.conn.in_transaction
    finally:
        app.close()
