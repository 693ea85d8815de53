"""The throwaway PostgreSQL of the tests (maildesk.testing.postgres), checked through psycopg like the store uses it."""

from __future__ import annotations

import psycopg
import pytest

from maildesk.testing.postgres import PgDatabase, Postgres, process_gone

pytestmark = pytest.mark.pg_always  # on PostgreSQL in every run


def connect(db: PgDatabase, password: str | None = None) -> psycopg.Connection:
    return psycopg.connect(db.url, password=db.password if password is None else password, connect_timeout=5)


def test_a_database_is_reachable_over_tcp_with_the_password(pg_url: PgDatabase):
    assert "@127.0.0.1:" in pg_url.url and pg_url.password not in pg_url.url
    with connect(pg_url) as conn:
        row = conn.execute("SELECT current_user, current_database(), inet_server_addr()::text").fetchone()
    assert row == ("maildesk", pg_url.name, "127.0.0.1/32")


def test_a_wrong_password_is_refused(pg_url: PgDatabase):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pg_url, password="not-" + pg_url.password)


def test_each_database_is_fresh_and_owned_by_the_role(postgres: Postgres, pg_url: PgDatabase):
    with connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
    other = postgres.database()
    try:
        with connect(other) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database"
                                 " WHERE datname = current_database()").fetchone()
        assert tables == [] and owner == ("maildesk",)
    finally:
        postgres.drop_database(other.name)


def test_unaccent_folds_accents_for_full_text_search(pg_url: PgDatabase):
    with connect(pg_url) as conn:
        folded = conn.execute("SELECT unaccent('Éléonore à Besançon')").fetchone()[0]
        matches = conn.execute(
            "SELECT to_tsvector('simple', unaccent(%s)) @@ plainto_tsquery('simple', unaccent(%s))",
            ("Remboursement refusé", "refuse"),
        ).fetchone()[0]
    assert folded == "Eleonore a Besancon" and matches is True


def test_restart_keeps_data_and_port(postgres: Postgres, pg_url: PgDatabase):
    with connect(pg_url) as conn:
        conn.execute("CREATE TABLE kept (x text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    port = postgres.port
    postgres.restart()
    assert postgres.is_running and postgres.port == port
    with connect(pg_url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [("before restart",)]


def test_a_killed_server_drops_its_clients_and_recovers_committed_data(postgres: Postgres, pg_url: PgDatabase):
    conn = connect(pg_url)
    conn.execute("CREATE TABLE kept (x text)")
    conn.execute("INSERT INTO kept VALUES ('committed')")
    conn.commit()
    conn.execute("INSERT INTO kept VALUES ('never committed')")
    backend = conn.info.backend_pid
    postgres.kill()
    assert not postgres.is_running and process_gone(backend)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    postgres.start()
    with connect(pg_url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [("committed",)]
