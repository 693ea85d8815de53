import json

from maildesk.cli.display import dumps, shown


def test_shown_escapes_what_drives_or_reorders_a_terminal():
    assert shown("a\x1b[2Jb\x07\x00\x7f") == "a\\x1b[2Jb\\x07\\x00\\x7f"
    assert shown("C1 \x9b31m \x85") == "C1 \\x9b31m \\x85"
    assert shown("bidi \u202e \u202a \u2066 \u2069 \u200f \u061c") == "bidi \\u202e \\u202a \\u2066 \\u2069 \\u200f \\u061c"
    assert shown("zw\u200b\u2060\ufeff tag\U000e0041") == "zw\\u200b\\u2060\\ufeff tag\\U000e0041"
    assert shown("one\ntwo\rthree\tfour\u2028five\u2029") == "one\\ntwo\\rthree\\tfour\\u2028five\\u2029"
    assert shown("argv \udcff") == "argv \\udcff"  # a byte that was not UTF-8


def test_shown_keeps_printable_text():
    for text in ("Colis jamais reçu", "Prix\u202f: 12\u00a0€", "转发：整体提升", "שלום", "café ☕ 👍", ""):
        assert shown(text) == text
    assert shown(None) == "" and shown(42) == "42"
    assert shown(shown("\x1b")) == "\\x1b"  # escaping twice changes nothing


def test_dumps_keeps_the_value_and_escapes_the_same_characters():
    doc = {"shop": "Shop\x1b\u202e\x9b\u2028\U000e0041 é", "n": 1}
    text = dumps(doc)
    assert json.loads(text) == doc
    assert not any(ch in text for ch in "\x1b\u202e\x9b\u2028\U000e0041") and "é" in text
    assert "\\udb40\\udc41" in text  # a character beyond the BMP as JSON writes it
