"""core/fetchplan.py over plain BODYSTRUCTURE tuples, as imapclient gives them: which parts of a
large message are fetched, and how the message is put back together."""
from __future__ import annotations

import base64
import random

import pytest

from maildesk.core import fetchplan
from maildesk.core.fetchplan import EDGE, Part, assemble, base64_size, boundary, leaves, plan


def leaf(ctype: bytes, subtype: bytes, octets: int, encoding: bytes = b"7bit") -> tuple:
    return (ctype, subtype, (b"charset", b"utf-8"), None, None, encoding, octets)


TEXT = leaf(b"text", b"plain", 2_000)
HTML = leaf(b"text", b"html", 3_000)
PHOTO = leaf(b"image", b"jpeg", 780_000, b"base64")
ALTERNATIVE = ([TEXT, HTML], b"alternative", (b"boundary", b"alt"))
MIXED = ([ALTERNATIVE, PHOTO, leaf(b"message", b"rfc822", 5_000)], b"mixed", (b"boundary", b"==mix=="))


def test_leaves_are_numbered_as_imap_sections_in_order_and_an_attached_message_is_one():
    assert [s for s, _ in leaves(MIXED)] == ["1.1", "1.2", "2", "3"]
    assert leaves(TEXT) == [("1", TEXT)]
    assert dict(leaves(MIXED))["2"] is PHOTO


def test_a_hostile_structure_is_looked_at_up_to_max_leaves():
    many = ([TEXT] * (fetchplan.MAX_LEAVES + 50), b"mixed", (b"boundary", b"b"))
    assert len(leaves(many)) == fetchplan.MAX_LEAVES


def test_boundary_is_read_from_the_multipart_parameters_only():
    assert boundary(MIXED) == b"==mix=="
    assert boundary(([TEXT], b"mixed", (b"BOUNDARY", b"up"))) == b"up"
    assert boundary(([TEXT], b"mixed", None)) is None
    assert boundary(TEXT) is None


def test_a_parts_decoded_size_is_estimated_from_its_encoding():
    photo = fetchplan.part("2", PHOTO, "colis.jpg", "image/jpeg", False, 80)
    assert (photo.octets, photo.size, photo.base64) == (780_000, 570_000, True)
    text = fetchplan.part("1", TEXT, "", "text/plain", True, 60)
    assert (text.octets, text.size, text.base64) == (2_000, 2_000, False)
    assert fetchplan.part("1", leaf(b"text", b"plain", None), "", "text/plain", True, 0).octets == 0


def parts(*specs) -> list[Part]:
    """(section, name, is_text, octets) each; decoded size = octets, MIME header 50 bytes."""
    return [Part(s, n, "text/plain" if t else "application/pdf", t, o, o, 50) for s, n, t, o in specs]


def test_text_first_then_the_attachments_that_fit_in_order():
    chosen = plan(parts(("1", "", True, 1_000), ("2", "a.pdf", False, 5_000), ("3", "b.pdf", False, 3_000),
                        ("4", "c.pdf", False, 900)), max_bytes=10_000, header_len=500, attachment_max=10_000)
    # budget 10,000 - 500 - 4,096 = 5,404; the text takes 1,150 (with its header and boundary);
    # a.pdf (5,150) does not fit, b.pdf (3,150) does, and c.pdf (1,050) in the 1,104 left
    assert chosen.take == {"1": 1_000, "3": 3_000, "4": 900}
    assert chosen.kept == ["b.pdf", "c.pdf"] and [p.name for p in chosen.omitted] == ["a.pdf"]
    assert not chosen.text_truncated


def test_text_larger_than_the_budget_is_cut_and_no_attachment_goes():
    chosen = plan(parts(("1", "", True, 50_000), ("2", "a.pdf", False, 10)), max_bytes=20_000, header_len=904,
                  attachment_max=10_000)
    assert chosen.take == {"1": 15_000} and chosen.text_truncated and chosen.partial(parts(("1", "", True, 50_000))[0])
    assert [p.name for p in chosen.omitted] == ["a.pdf"] and chosen.kept == []


def test_an_attachment_above_attachment_max_is_left_even_when_it_would_fit():
    chosen = plan(parts(("1", "", True, 100), ("2", "big.pdf", False, 3_000), ("3", "small.pdf", False, 2_000)),
                  max_bytes=100_000, header_len=0, attachment_max=2_500)
    assert chosen.kept == ["small.pdf"] and [p.name for p in chosen.omitted] == ["big.pdf"]


def test_summary_reports_exact_sizes_where_known():
    chosen = plan(parts(("1", "", True, 100), ("2", "a.pdf", False, 9_000), ("3", "b.pdf", False, 9_000)),
                  max_bytes=5_000, header_len=0, attachment_max=10_000)
    assert fetchplan.summary(parts(("1", "", True, 100), ("2", "a.pdf", False, 9_000), ("3", "b.pdf", False, 9_000)),
                             chosen, {"2": 6_543}) == {
        "parts": 3, "text_parts": 1, "text_truncated": False,
        "attachments_omitted": [{"name": "a.pdf", "size": 6_543}, {"name": "b.pdf", "size": 9_000}]}


def test_assemble_multipart_keeps_the_fetched_parts_between_boundaries():
    ps = parts(("1", "", True, 5), ("2", "a.pdf", False, 3))
    raw = assemble(b"Subject: x\r\n", b"B", ps, {"1": b"Content-Type: text/plain\r\n", "2": b""},
                   {"1": b"hello"})
    assert raw == (b"Subject: x\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n")


def test_assemble_single_part_without_its_body_is_an_empty_text():
    header = b"Subject: x\r\nContent-Type: application/pdf;\r\n name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    assert assemble(header, None, [], {}, {}) == (
        b"Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    assert assemble(b"Subject: x\r\n", None, [], {}, {"1": b"body"}) == b"Subject: x\r\n\r\nbody"


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)
@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 58, 700, 767, 768, 769, 1_234_567])
@pytest.mark.parametrize("width", [76, 64, 4])
def test_the_exact_size_of_an_attachment_left_on_the_server(size, width):
    """From its first and last KB (what _base64_sizes fetches) and its size in the BODYSTRUCTURE."""
    data = blob(size, size)
    text = base64.b64encode(data)
    encoded = b"".join(text[i:i + width] + b"\r\n" for i in range(0, len(text), width))
    head, tail = encoded[:EDGE], encoded[-EDGE:] if len(encoded) > EDGE else encoded[:EDGE]
    assert base64_size(head, tail, len(encoded)) == (size if encoded else None)
    # irregular lines are never guessed at: the caller keeps its estimate
    if size > 2000:
        odd = encoded[:300] + encoded[302:]  # one line two characters short
        assert base64_size(odd[:EDGE], odd[-EDGE:], len(odd)) is None
