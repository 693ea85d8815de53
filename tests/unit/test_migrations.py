"""The numbered schema as values: which steps a database still needs and what to tell its owner."""
from pathlib import Path

from maildesk.store.migrations import MIGRATIONS, SCHEMA_VERSION, schema_problem, steps


def test_steps_start_after_the_version_found_and_number_from_there():
    assert [n for n, _ in steps(0)] == list(range(1, SCHEMA_VERSION + 1))
    assert [n for n, _ in steps(SCHEMA_VERSION - 2)] == [SCHEMA_VERSION - 1, SCHEMA_VERSION]
    assert steps(SCHEMA_VERSION) == []


def test_a_step_is_its_script_split_into_statements_without_blanks():
    [(number, statements)] = steps(1)[:1]
    assert number == 2
    assert [s.strip() for s in statements] == ["CREATE INDEX outbox_rcpt ON outbox(rcpt, created_at)"]
    assert all(s.strip() for _, st in steps(0) for s in st)
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_schema_problem_says_what_to_run_or_nothing():
    db = Path("/var/lib/maildesk/maildesk.db")
    assert schema_problem(SCHEMA_VERSION, db) is None
    assert "run `maildesk migrate`" in schema_problem(SCHEMA_VERSION - 1, db)
    newer = schema_problem(SCHEMA_VERSION + 1, db)
    assert "newer than this maildesk knows" in newer and "migrate" in newer
