"""Every function that reads mail text or headers runs in time linear in its input (issue 12, finding 9).

Not a wall-clock bound: each function gets the same worst shape at 50 KB and at 500 KB and the
test asserts the ratio of the two times (best of 3) stays near 10. Linear work gives ~10 on any
machine, fast or loaded; quadratic work gives ~100 (mentioned() took 0.75 s on 10 k letters and
15 s on 40 k before). Times under 1 ms count as 1 ms, so timer noise on a tiny input cannot fake
a ratio; the bound of 40 leaves room for a loaded machine's noise, not for n² (~100)."""
from __future__ import annotations

import pytest

from maildesk.inbound import decode, extract, html, reply
from maildesk.inbound.parse import parse
from maildesk.core import policy, refs, sellers
from tests.support import LINEAR, growth

SMALL, BIG = 50_000, 500_000
SHAPES = {
    "letters": "a",
    "words": "a ",
    "at": "a@",
    "at-run": "@",
    "dash": "a-",
    "encoded-word": "=?",
    "quotes": ">",
    "blank-lines": " \t\n",
    "spaces": " ",
    "nbsp": "&nbsp;",
    "digits": "7",
    "tag": "[IMO-",
    "stars": "* ",
    "angle": "<a",
    "order": "commande n° ",
    "attribution": "Le 3 a écrit ",
}


def fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _mail(text: str) -> bytes:
    head = text[:900_000].replace("\n", " ")
    return ("From: Client <c@example.fr>\nTo: s@imolocale.test\nSubject: Bonjour " + head +
            "\nReferences: " + head + "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
            "Bonjour\n" + text + "\n* * *" + " " * 1000 + "x\n-----Original Message-----\n").encode()


def _html(text: str) -> str:
    return "<p>Bonjour " + text + "</p>"


READERS = {
    "sellers.mentioned": lambda s: sellers.mentioned(s, {"boutique lumiere": 1, "a a": 2}, {"s@shop.fr"}),
    "sellers.asks_for_contact": sellers.asks_for_contact,
    "parse.parse": lambda s: parse(_mail(s)),
    "reply.strip_quoted": reply.strip_quoted,
    "extract.find_order_number": extract.find_order_number,
    "extract.detect_language": extract.detect_language,
    "html.html_to_text": lambda s: html.html_to_text(_html(s)),
    "decode.decode_words": decode.decode_words,
    "extract.msgids": lambda s: extract.msgids([s]),
    "refs.find_references": lambda s: refs.find_references("IMO", s),
    "refs.tagged_subject": lambda s: refs.tagged_subject("IMO-23456A", s),
    "policy.parse_rating": policy.parse_rating,
}



@pytest.mark.parametrize("reader", list(READERS))
def test_work_grows_linearly_with_the_input(reader):
    fn = READERS[reader]
    ratio, name = max((growth(fn, fill(unit, SMALL), fill(unit, BIG)), name) for name, unit in SHAPES.items())
    assert ratio < LINEAR, f"{reader} on {name!r}: 500 KB took {ratio:.0f} times as long as 50 KB"


def test_mentioned_finds_names_and_addresses_as_before():
    names = {"boutique lumiere": 1, "boutique": 2, "ab": 3}
    text = "La Boutique Lumière (S@shop.fr, pas la@shop.fr.example) et la boutique ab"
    assert sellers.mentioned(text, names, {"s@shop.fr", "la@shop.fr"}) == ["boutique lumiere", "boutique", "s@shop.fr"]
