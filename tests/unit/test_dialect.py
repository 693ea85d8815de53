"""store/dialect.py: the shared queries' SQLite spellings rewritten for PostgreSQL, and nothing
inside a string literal touched."""
from __future__ import annotations

import pytest

from maildesk.store.dialect import to_postgres


@pytest.mark.parametrize("sqlite, postgres", [
    ("SELECT * FROM complaints WHERE ref = ?", "SELECT * FROM complaints WHERE ref = %s"),
    ("SELECT 1 FROM e WHERE at <= :until AND at > :since", "SELECT 1 FROM e WHERE at <= %(until)s AND at > %(since)s"),
    ("INSERT OR IGNORE INTO files(sha256, size) VALUES (?, ?)",
     "INSERT INTO files(sha256, size) VALUES (%s, %s) ON CONFLICT DO NOTHING"),
    ("SELECT 1 FROM events WHERE kind LIKE 'customer:%'", "SELECT 1 FROM events WHERE kind ILIKE 'customer:%%'"),
    ("SELECT max(a, b), min(x, y, z), max(at) FROM t", "SELECT GREATEST(a, b), LEAST(x, y, z), max(at) FROM t"),
    ("SELECT max(COALESCE(s.at, ''), (SELECT max(e.at) FROM e)) FROM s",
     "SELECT GREATEST(COALESCE(s.at, ''), (SELECT max(e.at) FROM e)) FROM s"),
    ("DELETE FROM search_index WHERE rowid IN (SELECT id * 4 + 1 FROM m)",
     "DELETE FROM search_index WHERE id IN (SELECT id * 4 + 1 FROM m)"),
    ("SELECT 1 FROM outbox WHERE instr(lower(CAST(raw AS TEXT)), ?) > 0",
     "SELECT 1 FROM outbox WHERE instr(lower(encode(raw, 'escape')), %s) > 0"),
    ("SELECT 1 FROM complaints c WHERE +c.first_contact <= :until",
     "SELECT 1 FROM complaints c WHERE c.first_contact <= %(until)s"),
    ("SELECT id FROM complaints c INDEXED BY complaints_retention WHERE x", "SELECT id FROM complaints c WHERE x"),
    ("SELECT c.id FROM changed CROSS JOIN complaints c ON c.id = changed.id CROSS JOIN q",
     "SELECT c.id FROM changed JOIN complaints c ON c.id = changed.id CROSS JOIN q"),
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("SELECT julianday(b) - julianday( c.a ), julianday('now') FROM t",
     "SELECT (extract(epoch FROM b::timestamptz) / 86400.0 + 2440587.5) - "
     "(extract(epoch FROM c.a::timestamptz) / 86400.0 + 2440587.5), julianday('now') FROM t"),
])
def test_sqlite_spellings_become_postgresql_ones(sqlite, postgres):
    assert to_postgres(sqlite) == postgres


def test_string_literals_keep_their_question_marks_colons_and_likes():
    sql = "SELECT 'où ? LIKE max(a, b) rowid :name 10:30', x FROM t WHERE y = ? AND z = 'it''s ?'"
    assert to_postgres(sql) == ("SELECT 'où ? LIKE max(a, b) rowid :name 10:30', x FROM t WHERE y = %s "
                                "AND z = 'it''s ?'")


def test_casts_and_binary_plus_are_left_alone():
    assert to_postgres("SELECT value::bigint + 1, id * 4 + 3 FROM meta") == "SELECT value::bigint + 1, id * 4 + 3 FROM meta"
