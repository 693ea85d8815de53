"""Staff commands and the Authentication-Results check, without I/O."""
import pytest

from maildesk.core.staff import Command, parse_commands
from maildesk.core.trust import verify_sender


def test_commands_at_the_top_and_the_reply_below():
    m = parse_commands("#ask\n\nPouvez-vous envoyer une photo du colis ?\n\nMerci,\nJulie")
    assert m.commands == (Command("ask"),) and m.errors == ()
    assert m.text.startswith("Pouvez-vous") and m.text.endswith("Julie")


def test_no_command_is_a_plain_reply():
    m = parse_commands("Bonjour, le remboursement est parti ce matin.\n#pas une commande")
    assert m.commands == () and "#pas une commande" in m.text


@pytest.mark.parametrize("text,error", [
    ("#frobnicate\nhello", "#frobnicate is not a command"),
    ("#level 7", "#level takes 1, 2 or 3"),
    ("#assign bob", "#assign needs an e-mail address"),
    ("#assign", "#assign needs an argument"),
    ("#escalate now please", "#escalate takes no argument"),
])
def test_bad_commands_are_explained(text, error):
    m = parse_commands(text)
    assert any(error in e for e in m.errors), m.errors


def test_several_commands_and_inline_note_text():
    m = parse_commands("#assign julie@imolocale.test\n#level 2\nOn s'en occupe.")
    assert [c.name for c in m.commands] == ["assign", "level"]
    assert parse_commands("#note le client a appelé").text == "le client a appelé"


GOOD = ("mx.google.com; dkim=pass header.i=@imolocale.test header.s=g header.b=abc; "
        "spf=pass (google.com: domain of julie@imolocale.test designates 1.2.3.4) smtp.mailfrom=julie@imolocale.test; "
        "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=imolocale.test")


def test_our_servers_dmarc_pass_is_trusted():
    assert verify_sender((GOOD,), "julie@imolocale.test", "mx.google.com") == (True, "dmarc=pass")


def test_dkim_pass_for_the_senders_domain_is_enough():
    header = "mx.google.com; dkim=pass header.d=imolocale.test; dmarc=none"
    assert verify_sender((header,), "julie@imolocale.test", "mx.google.com")[0]


def test_dkim_pass_for_another_domain_is_not():
    header = "mx.google.com; dkim=pass header.d=evil.example; dmarc=fail header.from=imolocale.test"
    assert not verify_sender((header,), "julie@imolocale.test", "mx.google.com")[0]


def test_only_the_topmost_header_from_our_server_counts():
    ours = "mx.google.com; dmarc=fail header.from=imolocale.test"
    forged = GOOD  # added lower down by the sender, pretending to be Google
    assert not verify_sender((ours, forged), "julie@imolocale.test", "mx.google.com")[0]


def test_headers_from_other_servers_are_ignored():
    assert verify_sender(("evil.example; dmarc=pass header.from=imolocale.test",),
                         "julie@imolocale.test", "mx.google.com") == (False, "no Authentication-Results from mx.google.com")
    assert not verify_sender((), "julie@imolocale.test", "mx.google.com")[0]


@pytest.mark.parametrize("text", ["#note\n#resolve\nLe client a appelé.", "#escalate\n#note on monte",
                                  "#note\n#seller S-1042\nfaits"])
def test_a_note_cannot_be_combined_with_other_commands(text):
    m = parse_commands(text)
    assert any("#note cannot be combined with other commands" in e for e in m.errors), m.errors


def test_a_note_alone_or_commands_without_a_note_are_fine():
    assert parse_commands("#note\n#note encore\nLe client a appelé.").errors == ()
    assert parse_commands("#level 2\n#level 3").errors == ()


@pytest.mark.parametrize("arg, why", [
    ('"jean"."dupont"@imolocale.test', "mixes quoted"),
    ('bob"smith"@imolocale.test', "inside the unquoted"),
    ("julie@[127.0.0.1]", "IP-literal"),
    ("julie@imolocale", "no dot"),
])
def test_assign_refuses_an_address_mail_cannot_go_to(arg, why):
    m = parse_commands(f"#assign {arg}\nMerci")
    assert m.commands == () and len(m.errors) == 1
    assert "#assign needs an e-mail address" in m.errors[0] and why in m.errors[0]
