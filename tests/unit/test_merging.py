"""core/merging.py: may complaint A merge into B, and what happens (no database)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from maildesk.core import merging, refs, staff
from maildesk.core.commands import ForMerge, REGISTRY
from tests.support import make_config

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
A = merging.Side("IMO-AAAAA2", "camille@example.fr", "camille@example.fr", "open")
B = merging.Side("IMO-BBBBB3", "camille+2@example.fr", "camille@example.fr", "open")
OTHER = merging.Side("IMO-CCCCC4", "paul@example.fr", "paul@example.fr", "open")


def decide(a=A, b=B, force=False, text=""):
    return merging.decide(a, b, b.ref if b else "IMO-ZZZZZ9", force=force, actor="cs@imolocale.test",
                          now=NOW, text=text)


def test_same_customer_merges_a_closes_with_the_survivor_and_its_customer_is_told_once():
    m = decide(text="Nous regroupons vos demandes.")
    assert isinstance(m, merging.Merge)
    assert dict(m.source.changes) == {"status": "closed", "closed_at": NOW, "merged_into": B.ref}
    assert [e.kind for e in m.source.events] == ["closed", "merged_into"]
    assert [e.kind for e in m.target.events] == ["merged"] and m.target.events[0].detail["source"] == A.ref
    assert dict(m.target.changes) == {}  # B keeps its clock, level and owner
    assert m.notice.to == (A.customer_addr,) and m.notice.template == "merged" and m.notice.audience == "customer"
    assert m.notice.context == {"source": A.ref, "target": B.ref, "note": "Nous regroupons vos demandes."}
    assert m.notes == ()


@pytest.mark.parametrize("a, b, force, words", [
    (A, A, False, "into itself"),
    (A, None, False, "no complaint IMO-ZZZZZ9"),
    (A, OTHER, False, "another customer's complaint"),
    (merging.Side(**{**A.__dict__, "merged_into": "IMO-DDDDD5"}), B, False, "already merged into IMO-DDDDD5"),
    (A, merging.Side(**{**B.__dict__, "merged_into": "IMO-DDDDD5"}), False, "merge into IMO-DDDDD5"),
])
def test_refusals_say_why(a, b, force, words):
    r = decide(a, b, force)
    assert isinstance(r, merging.Refusal) and words in r.reason


def test_another_customers_complaint_with_force_merges_and_says_it_was_forced():
    m = decide(A, OTHER, force=True)
    assert isinstance(m, merging.Merge) and m.target.events[0].detail["forced"] is True
    assert any("forced" in n for n in m.notes)


def test_force_does_not_override_the_other_refusals():
    assert isinstance(decide(A, A, force=True), merging.Refusal)


def test_open_into_closed_reopens_the_survivor_and_says_so():
    m = decide(A, merging.Side(**{**B.__dict__, "status": "closed"}))
    assert m.target.changes["status"] == "open" and m.target.changes["closed_at"] is None
    assert [e.kind for e in m.target.events] == ["reopened", "merged"]
    assert any("open again" in n for n in m.notes)


@pytest.mark.parametrize("a_status, b_status, words", [
    ("closed", "open", "clock is unchanged"), ("resolved", "waiting_customer", "clock is unchanged"),
    ("closed", "resolved", "stays resolved")])
def test_a_settled_complaint_merges_without_reopening_and_says_so(a_status, b_status, words):
    m = decide(merging.Side(**{**A.__dict__, "status": a_status}), merging.Side(**{**B.__dict__, "status": b_status}))
    assert "status" not in m.target.changes and any(words in n for n in m.notes)


@pytest.mark.parametrize("arg, ref, force, error", [
    ("imo-4k7m2f", "IMO-4K7M2F", False, None),
    ("[IMO-4K7M2F] force", "IMO-4K7M2F", True, None),
    ("IMO-4K7M2F FORCE", "IMO-4K7M2F", True, None),
    ("IMO-4K7M2X", None, False, "not a valid IMO reference"),
    ("IMO-4K7M2F IMO-3", None, False, "one reference"),
    ("force", None, True, "one reference"),
])
def test_reading_the_argument(arg, ref, force, error):
    got_ref, got_force, got_error = merging.read_argument("IMO", arg, refs.read_reference)
    assert (got_ref, got_force) == (ref, force)
    assert (error is None and got_error is None) or error in got_error


def test_merge_command_in_the_registry_checks_its_shape_and_takes_the_text():
    parsed = staff.parse_commands("#merge IMO-4K7M2F force\nNous regroupons vos demandes.")
    assert parsed.errors == () and parsed.commands[0].name == "merge"
    assert staff.parse_commands("#merge").errors and staff.parse_commands("#merge A B C").errors
    assert "#merge" in REGISTRY["merge"].help_line and REGISTRY["merge"].uses_text


def test_merge_command_decides_a_request_for_the_service():
    result = REGISTRY["merge"].decide(None, NOW, make_config(), "cs@imolocale.test", "imo-4k7m2f force", "texte")
    assert result == ForMerge("IMO-4K7M2F", True, "texte")
