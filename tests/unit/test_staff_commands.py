"""The one registry of staff commands (core/commands.py): help text, checks, where the
staff text goes and what each command decides, without I/O."""
from datetime import datetime, timedelta, timezone

import pytest

from maildesk.core import commands
from maildesk.core.commands import REGISTRY, ForSeller
from maildesk.core.policy import Complaint
from maildesk.core.staff import parse_commands
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
C = Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1, status="open",
              first_contact=T0 - timedelta(hours=2))
STAFF = "julie@imolocale.test"


def test_every_registered_command_appears_in_the_help_text_with_its_argument():
    text = commands.help_text()
    for name, command in REGISTRY.items():
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"#{name} "))
        assert command.help in line
        if command.argument:
            assert f"#{name} {command.argument}:" in line
    assert len(text.splitlines()) == len(REGISTRY)


def test_an_unknown_command_gives_the_same_error_as_before():
    assert parse_commands("#frobnicate\nhello").errors == ("#frobnicate is not a command",)


def test_the_checks_come_from_the_registry():
    assert parse_commands("#assign").errors == ("#assign needs an argument (#assign ADDRESS: make a staff member "
                                                "the owner)",)
    assert parse_commands("#level 7").errors == ("#level takes 1, 2 or 3, not '7'",)
    assert parse_commands("#escalate now").errors == ("#escalate takes no argument",)
    assert parse_commands("#resolve merci").errors == ()


def test_the_text_goes_to_the_first_seller_command_and_never_to_the_customer():
    p = commands.plan([("ask", ""), ("seller", "S-1"), ("contact-seller", "more")], "facts")
    assert [(s.command.name, s.text) for s in p.steps] == [("ask", ""), ("seller", "facts"), ("contact-seller", "")]
    assert p.relay == ""


def test_resolve_or_ask_takes_the_text_else_it_is_relayed():
    p = commands.plan([("escalate", ""), ("resolve", ""), ("ask", "")], "done")
    assert [(s.command.name, s.text) for s in p.steps] == [("escalate", ""), ("resolve", "done"), ("ask", "")]
    assert p.relay == ""
    p = commands.plan([("escalate", "")], "hello")
    assert p.relay == "hello"


def test_a_note_takes_the_text_and_nothing_is_relayed():
    p = commands.plan([("note", "")], "internal")
    assert [(s.command.name, s.text) for s in p.steps] == [("note", "internal")] and p.relay == ""
    d = REGISTRY["note"].decide(C, T0, CFG, STAFF, "", "internal")
    assert [(e.kind, e.detail) for e in d.events] == [("note", {"text": "internal"})] and d.mails == []


def test_assign_is_a_decision_not_a_store_write():
    d = REGISTRY["assign"].decide(C, T0, CFG, STAFF, "Marc@Imolocale.test", "")
    assert dict(d.changes) == {"owner": "marc@imolocale.test"}
    assert [(e.kind, e.detail) for e in d.events] == [("assigned", {"owner": "marc@imolocale.test"})]


@pytest.mark.parametrize("name, arg, level", [("escalate", "", 2), ("level", "3", 3)])
def test_level_commands_move_the_complaint(name, arg, level):
    d = REGISTRY[name].decide(C, T0, CFG, STAFF, arg, "")
    assert d.changes["level"] == level


def test_escalate_stops_at_level_3():
    d = REGISTRY["escalate"].decide(Complaint(**{**C.__dict__, "level": 3}), T0, CFG, STAFF, "", "")
    assert [e.kind for e in d.events] == ["level_unchanged"]


def test_seller_commands_are_for_the_seller_desk_with_their_text():
    assert REGISTRY["seller"].decide(C, T0, CFG, STAFF, "S-1", "facts") == ForSeller("seller", "S-1", "facts")
    assert {n for n, c in REGISTRY.items() if c.for_seller} == {"seller", "contact-seller", "seller-failed",
                                                                 "uncooperative"}


def test_ask_and_canned_answers_are_signed_with_the_staff_name():
    assert [n for n, c in REGISTRY.items() if c.signed] == ["ask", "template"]


@pytest.mark.parametrize("arg, name", [("photos", "photos"), ("Retour-Accepte", "retour-accepte"), ("", ""),
                                       ("../../etc/passwd", ""), ("fr/photos", ""), (".hidden", "")])
def test_template_names_a_canned_file_never_a_path(arg, name):
    assert REGISTRY["template"].decide(C, T0, CFG, STAFF, arg, "Julie") == commands.Canned(name, "Julie", arg)


def test_template_alone_is_accepted_and_two_names_are_refused():
    assert parse_commands("#template\n").errors == ()
    assert parse_commands("#template photos\nMerci").commands[0].arg == "photos"
    assert parse_commands("#template photos retour").errors == ("#template takes one name, not 'photos retour'",)


def test_the_staff_text_follows_the_canned_answer():
    p = commands.plan([("template", "photos")], "Julie")
    assert [(s.command.name, s.arg, s.text) for s in p.steps] == [("template", "photos", "Julie")] and p.relay == ""
