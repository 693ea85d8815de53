"""The named queries of the operations side (store/maintenance, notices, quarantine, webhooks,
backups) against a real temporary SQLite file: what each returns and changes, including what
it must leave alone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import os

import pytest

from maildesk.store import backups, maintenance, notices, quarantine, webhooks
from maildesk.store.db import Store, iso
from maildesk.store.migrations import SCHEMA_VERSION
from tests.integration.conftest import config_storage
from tests.support import make_config

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path, storage):
    """maildesk.db, or with MAILDESK_TEST_STORE=postgresql a fresh PostgreSQL database."""
    if not storage:
        s = Store(tmp_path / "m.db")
    else:
        from maildesk.store.opening import open_store
        s = open_store(make_config(tmp_path, storage=config_storage(storage)), os.environ)
    yield s
    s.close()


def complaint(store, ref, status="open", next_due=None, first_contact=T0) -> int:
    return store.insert("complaints", {
        "ref": ref, "customer_addr": f"{ref.lower()}@example.com", "first_contact": iso(first_contact),
        "opened_at": iso(first_contact), "status": status, "next_due": iso(next_due) if next_due else None})


def test_last_complaint_id_is_zero_on_an_empty_store_then_the_highest(store):
    assert maintenance.last_complaint_id(store) == 0
    assert maintenance.last_outreach_id(store) == 0
    with store.transaction():
        complaint(store, "AAA111")
        second = complaint(store, "BBB222")
    assert maintenance.last_complaint_id(store) == second
    assert maintenance.complaints_from(store, second) == [second]
    assert maintenance.count_from(store, 1) == 2


def test_imported_open_leaves_out_closed_clocked_kept_and_unimported_complaints(store):
    with store.transaction():
        old = complaint(store, "OLD001", first_contact=T0 - timedelta(days=30))
        recent = complaint(store, "NEW001", status="waiting_customer", first_contact=T0 - timedelta(days=1))
        resolved = complaint(store, "RES001", status="resolved")
        clocked = complaint(store, "CLK001", next_due=T0)
        kept = complaint(store, "KPT001")
        live = complaint(store, "LIV001")  # never imported
        for cid in (old, recent, resolved, clocked, kept):
            store.add_event(cid, T0, "maildesk", "imported", source="x.mbox")
        store.add_event(kept, T0, "maildesk", "kept_open")
    assert sorted(maintenance.imported_open(store)) == sorted([old, recent])
    assert maintenance.imported_open(store, T0 - timedelta(days=7)) == [recent]
    assert maintenance.kept_open_count(store) == 1
    with store.transaction():
        maintenance.set_status(store, old, "imported")
    assert maintenance.imported_open(store) == [recent]
    assert live not in maintenance.imported_open(store)


def test_stop_clocks_from_clears_only_from_the_given_ids(store):
    with store.transaction():
        before = complaint(store, "BEF001", next_due=T0)
        after = complaint(store, "AFT001", next_due=T0)
        maintenance.stop_clocks_from(store, after, 1)
    due = {r["ref"]: r["next_due"] for r in store.all("SELECT ref, next_due FROM complaints")}
    assert due == {"BEF001": iso(T0), "AFT001": None}
    assert before < after


def test_stop_clock_if_imported_spares_a_live_complaint(store):
    with store.transaction():
        imported = complaint(store, "IMP001", next_due=T0)
        complaint(store, "LIV001", next_due=T0)
        store.add_event(imported, T0, "maildesk", "imported", source="x.mbox")
        maintenance.stop_clock_if_imported(store, "IMP001")
        maintenance.stop_clock_if_imported(store, "LIV001")
    assert store.complaint("IMP001")["next_due"] is None
    assert store.complaint("LIV001")["next_due"] == iso(T0)


def test_give_back_reference_renames_the_complaint_and_its_processed_rows(store):
    with store.transaction():
        cid = complaint(store, "NEW999")
        store.insert("processed", {"message_id": "<a@x>", "at": iso(T0), "outcome": "processed", "ref": "NEW999"})
        store.insert("processed", {"message_id": "<b@x>", "at": iso(T0), "outcome": "processed", "ref": "OTHER1"})
        maintenance.give_back_reference(store, cid, "NEW999", "OLD123")
    assert store.complaint("OLD123")["id"] == cid and store.complaint("NEW999") is None
    assert [tuple(r) for r in store.all("SELECT message_id, ref FROM processed ORDER BY message_id")] == [
        ("<a@x>", "OLD123"), ("<b@x>", "OTHER1")]


def outbox_row(store, message_id, status="queued") -> int:
    return store.insert("outbox", {"message_id": message_id, "kind": "ack", "audience": "customer",
                                   "mail_from": "s@x", "rcpt": '["c@x"]', "subject": "s", "raw": b"r",
                                   "status": status, "next_attempt_at": iso(T0), "created_at": iso(T0)})


def test_queued_mail_and_mark_sent(store):
    with store.transaction():
        queued = outbox_row(store, "<q@x>")
        outbox_row(store, "<s@x>", status="sent")
    assert maintenance.queued_mail(store) == [maintenance.QueuedMail(queued, "<q@x>")]
    with store.transaction():
        maintenance.mark_sent(store, queued, T0, "found in Sent after a restore")
    row = store.one("SELECT status, sent_at, last_error FROM outbox WHERE id = ?", queued)
    assert tuple(row) == ("sent", iso(T0), "found in Sent after a restore")
    assert maintenance.queued_mail(store) == []


def test_notices_batch_counts_all_waiting_shows_the_newest_and_marks_up_to_its_last_id(store):
    with store.transaction():
        for i in range(5):
            notices.add(store, "admin_flood", "*", T0 + timedelta(minutes=i), None, {"n": i})
        notices.add(store, "admin_flood", "other", T0, None, {"n": 99})
    assert notices.any_since(store, "admin_flood", "*", T0 + timedelta(minutes=4))
    assert not notices.any_since(store, "admin_flood", "*", T0 + timedelta(minutes=5))
    assert notices.last_mailed(store, "admin_flood", "*") is None
    batch = notices.batch(store, "admin_flood", "*", 3)
    assert (batch.count, batch.since) == (5, T0)
    assert [(b["n"], b["at"]) for b in batch.shown] == [(i, T0 + timedelta(minutes=i)) for i in (2, 3, 4)]
    with store.transaction():
        notices.add(store, "admin_flood", "*", T0 + timedelta(minutes=9), None, {"n": 5})  # after the batch
        notices.mark_mailed(store, "admin_flood", "*", batch.last_id, T0 + timedelta(minutes=10), "<m@x>")
    assert notices.last_mailed(store, "admin_flood", "*") == T0 + timedelta(minutes=10)
    assert sorted((w.key, w.oldest) for w in notices.waiting(store)) == [
        ("*", T0 + timedelta(minutes=9)), ("other", T0)]


def test_quarantine_rows_by_hash_and_only_held_ones_listed(store):
    with store.transaction():
        for sha, at in (("b" * 64, T0 + timedelta(hours=1)), ("a" * 64, T0), ("c" * 64, T0)):
            store.insert("quarantine", {"at": iso(at), "folder": "Q", "sha256": sha, "size": 10, "reason": "why"})
    first = quarantine.by_sha256(store, "a" * 64)
    assert (first.at, first.status, first.reason) == (T0, "held", "why")
    assert quarantine.by_sha256(store, "d" * 64) is None
    with store.transaction():
        quarantine.mark_retried(store, quarantine.by_sha256(store, "c" * 64).id)
    assert [h.at for h in quarantine.still_held(store)] == [T0, T0 + timedelta(hours=1)]


def seller(store, seller_id):
    store.insert("sellers", {"id": seller_id, "shop_name": seller_id, "address": f"{seller_id}@shop.example",
                             "created_at": iso(T0), "updated_at": iso(T0)})


def test_webhook_deliveries_due_pending_and_their_attempts(store):
    with store.transaction():
        seller(store, "S-1")
        seller(store, "S-2")
        early = webhooks.add(store, "http://h/1", "S-1", "seller.restricted", {"n": 1}, T0)
        later = webhooks.add(store, "http://h/2", "S-2", "seller.restricted", {"n": 2}, T0 + timedelta(hours=1))
    [row] = webhooks.due(store, T0, 10)
    assert row.delivery_id == early and row.attempts == 0 and '"id": "' + early + '"' in row.payload
    assert [d.delivery_id for d in webhooks.pending(store)] == [early, later]
    assert [d.delivery_id for d in webhooks.pending(store, "S-2")] == [later]
    with store.transaction():
        webhooks.failed_attempt(store, row.id, 1, "HTTP 500", T0 + timedelta(minutes=5))
    [again] = webhooks.pending(store, "S-1")
    assert (again.attempts, again.last_error, again.next_attempt_at) == (1, "HTTP 500", iso(T0 + timedelta(minutes=5)))
    assert webhooks.due(store, T0 + timedelta(minutes=4), 10) == []
    with store.transaction():
        webhooks.postpone(store, row.id, T0 + timedelta(hours=2))
        webhooks.delivered(store, webhooks.pending(store, "S-2")[0].id, 1, T0 + timedelta(hours=1))
    assert webhooks.due(store, T0 + timedelta(hours=1, minutes=59), 10) == []
    assert [d.delivery_id for d in webhooks.pending(store)] == [early]


@pytest.mark.sqlite_only  # backups of the SQLite file (PostgreSQL: pg_dump)
def test_a_backup_records_itself_and_restores_with_the_state_given(store, tmp_path):
    with store.transaction():
        store.insert("processed", {"message_id": "<old@x>", "at": iso(T0), "outcome": "processed"})
        store.insert("processed", {"message_id": "<new@x>", "at": iso(T0 + timedelta(hours=1)),
                                   "outcome": "processed"})
    info = backups.take_backup(store.path, tmp_path / "b.db", T0 + timedelta(days=1))
    assert info == backups.BackupInfo(iso(T0 + timedelta(days=1)), SCHEMA_VERSION, "<new@x>",
                                      iso(T0 + timedelta(hours=1)))
    assert backups.read_backup(tmp_path / "b.db") == backups.BackupFacts(SCHEMA_VERSION, info.taken_at)
    assert backups.schema_of(tmp_path / "b.db") == SCHEMA_VERSION
    assert backups.schema_of(tmp_path / "none.db") == 0
    backups.restore_backup(tmp_path / "b.db", tmp_path / "r.db", {"recover_since": info.taken_at})
    restored = Store(tmp_path / "r.db", readonly=True)
    try:
        assert restored.get_state("recover_since") == info.taken_at
        assert restored.seen("<old@x>") and restored.seen("<new@x>")
    finally:
        restored.close()
