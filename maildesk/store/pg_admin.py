"""Superuser statements that set up a PostgreSQL cluster for maildesk: its role, template, databases.

Used by maildesk.testing.postgres for the throwaway test clusters; here because all SQL lives in the store.
Names go through psycopg.sql so they are quoted, and the password is sent as a literal, never logged.
"""

from __future__ import annotations

from psycopg import Connection, sql

TEMPLATE_EXTENSIONS = ("unaccent",)  # accent-folded full-text search


def create_login_role(conn: Connection, role: str, password: str) -> None:
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))


def create_database(conn: Connection, name: str, owner: str, template: str = "template1") -> None:
    """CREATE DATABASE cannot run in a transaction: ``conn`` must be in autocommit mode."""
    conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template)
        )
    )


def add_template_extensions(conn: Connection) -> None:
    """Run connected to the template, so each database copied from it has the extensions already."""
    for extension in TEMPLATE_EXTENSIONS:
        conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))


def mark_template(conn: Connection, name: str) -> None:
    """A template may be copied by CREATE DATABASE ... TEMPLATE and cannot be dropped by mistake."""
    conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name)))


def drop_database(conn: Connection, name: str) -> None:
    """FORCE ends sessions a test left open (a pool not closed), which would otherwise block the drop."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
