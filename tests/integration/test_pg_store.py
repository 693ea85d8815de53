"""The PostgreSQL store against the SQLite one: the same schema (tables and columns) at the same
version, and the SQLite functions the shared queries call giving SQLite's answers. Real servers."""
from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from maildesk.core.addresses import mailbox_key
from maildesk.store.db import Store
from maildesk.store.migrations import SCHEMA_VERSION
from maildesk.store.postgres import PgStore

pytestmark = pytest.mark.pg_always  # on PostgreSQL in every run


@pytest.fixture
def pg(pg_url):
    store = PgStore(pg_url.url, pg_url.password)
    yield store
    store.close()


@pytest.fixture
def lite():
    store = Store(Path(tempfile.mkdtemp(prefix="maildesk-lite-")) / "maildesk.db")
    yield store
    store.close()


def _sqlite_columns(store: Store) -> dict[str, list[str]]:
    tables = [r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'search_index%' AND name NOT LIKE 'sqlite_%'")]
    return {t: [r[1] for r in store.all(f"PRAGMA table_info({t})")] for t in tables}


def _pg_columns(store: PgStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in store.all("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
        out.setdefault(r[0], []).append(r[1])
    return out


def test_both_schemas_have_the_same_tables_and_columns_at_the_same_version(pg, lite):
    assert pg.version == lite.version == SCHEMA_VERSION
    theirs = _pg_columns(pg)
    for only_pg in ("meta", "daemons", "search_index"):  # the version and the leader; the search's own shape
        theirs.pop(only_pg)
    assert theirs == _sqlite_columns(lite)


@pytest.mark.parametrize("address", [
    "Jean.Dupont+colis@GoogleMail.com", "camille@example.fr", "  Camille@Example.FR ", '"a.b+c"@gmail.com',
    "x+@example.fr", "pas-une-adresse", "ÉLODIE@exemple.fr", "a@b@example.fr", ""])
def test_mailbox_key_in_postgresql_is_the_python_rule(pg, address):
    assert pg.scalar("SELECT mailbox_key(?)", address) == mailbox_key(address)


def test_sqlite_functions_answer_as_sqlite_does(pg, lite):
    queries = [
        ("SELECT instr('abcabc', 'ca')", ()),
        ("SELECT json_extract('{\"level\": 2, \"text\": \"é\"}', '$.text')", ()),
        ("SELECT json_array_length('[\"a\", \"b\", \"c\"]')", ()),
        ("SELECT CAST(round((julianday(?) - julianday(?)) * 86400) AS INTEGER)",
         ("2026-11-24T10:00:30+00:00", "2026-11-23T09:00:00+00:00")),
        ("SELECT max(?, ?, ?)", ("2026-01-01", "2026-03-01", "2026-02-01")),
        ("SELECT count(*) FROM complaints WHERE ref LIKE ?", ("imo-%",)),
    ]
    for sql, params in queries:
        assert pg.scalar(sql, *params) == lite.scalar(sql, *params), sql


def test_times_sort_as_text_byte_by_byte_whatever_the_locale(pg):
    now = datetime(2026, 11, 24, 9, tzinfo=timezone.utc).isoformat()
    with pg.transaction():
        for ref, at in (("IMO-A", "2026-11-24T09:00:00+00:00"), ("IMO-B", "2026-11-24T10:00:00+00:00"),
                        ("imo-c", "2026-11-24T08:59:59+00:00")):
            pg.insert("complaints", {"ref": ref, "customer_addr": "x@example.fr", "first_contact": at,
                                     "opened_at": now})
    assert [r["ref"] for r in pg.all("SELECT ref FROM complaints ORDER BY first_contact")] == ["imo-c", "IMO-A", "IMO-B"]
    assert [r["ref"] for r in pg.all("SELECT ref FROM complaints ORDER BY ref")] == ["IMO-A", "IMO-B", "imo-c"]


def test_a_failed_nested_step_rolls_back_alone_as_on_sqlite(pg):
    now = "2026-11-24T09:00:00+00:00"
    with pg.transaction():
        pg.insert("complaints", {"ref": "IMO-KEEP", "customer_addr": "x@example.fr", "first_contact": now,
                                 "opened_at": now})
        with pytest.raises(Exception):
            with pg.transaction():
                pg.insert("complaints", {"ref": "IMO-GONE", "customer_addr": "y@example.fr", "first_contact": now,
                                         "opened_at": now})
                pg.insert("complaints", {"ref": "IMO-KEEP", "customer_addr": "z@example.fr", "first_contact": now,
                                         "opened_at": now})  # the reference is UNIQUE
    assert [r["ref"] for r in pg.all("SELECT ref FROM complaints")] == ["IMO-KEEP"]


def test_the_search_index_follows_complaints_messages_and_notes(pg):
    now = "2026-11-24T09:00:00+00:00"
    with pg.transaction():
        cid = pg.insert("complaints", {"ref": "IMO-S", "customer_addr": "x@example.fr", "subject": "Colis reçu abîmé",
                                       "first_contact": now, "opened_at": now})
        pg.insert("messages", {"complaint_id": cid, "message_id": "<m@x>", "direction": "in", "kind": "customer",
                               "at": now, "body": "La lampe était cassée"})
        pg.add_event(cid, datetime.now(timezone.utc), "cs@imolocale.test", "note", text="Vendeur relancé")
    found = {w: pg.scalar("SELECT count(*) FROM search_index WHERE words @@ websearch_to_tsquery('md_search', ?)", w)
             for w in ("recu", "abime", "etait", "relance", "absent")}
    assert found == {"recu": 1, "abime": 1, "etait": 1, "relance": 1, "absent": 0}
    with pg.transaction():
        pg.conn.execute("DELETE FROM events WHERE complaint_id = ?", (cid,))
        pg.conn.execute("DELETE FROM messages WHERE complaint_id = ?", (cid,))
        pg.conn.execute("DELETE FROM complaints WHERE id = ?", (cid,))
    assert pg.scalar("SELECT count(*) FROM search_index WHERE source <> 'note'") == 0

