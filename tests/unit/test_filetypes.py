"""The rules that say what is wrong with an attachment as it came (core/filetypes.py), and the
parse that fills `Attachment.problem` (inbound/mime.py), a 10,000-part message included."""
from __future__ import annotations

import base64

import pytest

from maildesk.core import filetypes
from maildesk.core.filetypes import base64_damage, problem, sniff, type_problem
from maildesk.inbound.mime import MAX_PARTS
from maildesk.inbound.parse import parse

EXE = b"MZ\x90\x00\x03\x00\x00\x00"


@pytest.mark.parametrize("data,kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF89a\x01\x00", "gif"),
    (b"%PDF-1.7\n", "pdf"), (b"PK\x03\x04\x14\x00", "zip"), (EXE, "exe"), (b"Rar!\x1a\x07\x01\x00", "rar"),
    (b"\x1f\x8b\x08\x00", "gzip"), (b"7z\xbc\xaf\x27\x1c\x00", "7z"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
    (b"\x00\x00\x00\x18ftypheic", "isomedia"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"\x00" * 257 + b"ustar\x0000", "tar"), (b"Bonjour", None), (b"", None),
])
def test_the_magic_numbers_that_matter(data, kind):
    assert sniff(data) == kind


@pytest.mark.parametrize("declared,data,expected", [
    ("image/jpeg", b"%PDF-1.4 x", "declared image/jpeg, the bytes are a PDF"),
    ("image/jpeg", EXE, "declared image/jpeg, the bytes are a Windows program (EXE)"),
    ("application/pdf", b"\xff\xd8\xff\xe0", "declared application/pdf, the bytes are a JPEG image"),
    ("text/plain", EXE, "declared text/plain, the bytes are a Windows program (EXE)"),
    ("image/png", b"GIF89a", "declared image/png, the bytes are a GIF image"),
    ("image/jpeg", b"not a photo", "declared image/jpeg, the bytes are not a JPEG image"),
    ("application/zip", b"Rar!\x1a\x07\x00", "declared application/zip, the bytes are a RAR archive"),
    ("application/vnd.foo", EXE, "declared application/vnd.foo, the bytes are a Windows program (EXE)"),
    # agreeing, generic or unknown to us: nothing to say
    ("IMAGE/JPEG", b"\xff\xd8\xff\xdb", None),
    ("application/octet-stream", EXE, None),
    ("application/octet-stream", b"%PDF-1.4", None),
    ("application/pdf", b"\r\n%PDF-1.4", None),  # readers accept junk before the header
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04", None),
    ("application/vnd.ms-excel", b"PK\x03\x04", None),  # a .xlsx sent under the old type
    ("application/msword", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", None),
    ("application/epub+zip", b"PK\x03\x04", None),
    ("text/plain", b"Bonjour", None),
    ("application/vnd.foo", b"PK\x03\x04", None),
    ("image/heic", b"\x00\x00\x00\x18ftypheic", None),
])
def test_a_declared_type_its_bytes_deny(declared, data, expected):
    assert type_problem(declared, data) == expected


@pytest.mark.parametrize("text,damage", [
    ("aGVsbG8=", None), ("aGVs\r\nbG8h", None), ("", None),
    ("aGVsbG8", "bad padding"), ("aGVs*G8=", "invalid characters"), ("aGVsbG8=aGVs", "bad padding"),
    ("aGVsb", "truncated"), ("aGVsbG8====", "bad padding"),
])
def test_damaged_base64(text, damage):
    assert base64_damage(text) == damage


def test_what_is_wrong_with_one_attachment_first_thing_first():
    assert problem("image/jpeg", b"", "aGVs*") == filetypes.DAMAGED_BASE64
    assert problem("image/jpeg", b"\xff\xd8\xff", None, ("InvalidBase64PaddingDefect",)) == filetypes.DAMAGED_BASE64
    assert problem("image/jpeg", b"") == "empty file"
    assert problem("image/jpeg", b"%PDF-1.4") == "declared image/jpeg, the bytes are a PDF"
    assert problem("image/jpeg", b"\xff\xd8\xff\xe0", "/9j/4A==") is None


def _mixed(parts: list[tuple[str, str]]) -> bytes:
    body = "".join(f"--B\nContent-Type: {ctype}\nContent-Disposition: attachment; filename=\"f{n}\"\n"
                   f"Content-Transfer-Encoding: base64\n\n{encoded}\n" for n, (ctype, encoded) in enumerate(parts))
    return ("From: a@example.fr\nTo: support@imolocale.test\nSubject: pièces\nMessage-ID: <p@x>\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nVoici.\n'
            + body + "--B--\n").encode()


def test_parse_fills_the_problem_and_keeps_damaged_base64_as_it_came():
    pdf = base64.b64encode(b"%PDF-1.4 facture").decode()
    m = parse(_mixed([("image/jpeg", pdf), ("image/jpeg", "/9j/4AAQ!!*SkZJRg"), ("application/pdf", ""),
                      ("image/png", base64.b64encode(b"\x89PNG\r\n\x1a\n").decode())]))
    assert [a.problem for a in m.attachments] == ["declared image/jpeg, the bytes are a PDF", filetypes.DAMAGED_BASE64,
                                                  "empty file", None]
    damaged = m.attachments[1]
    assert damaged.payload == b"/9j/4AAQ!!*SkZJRg" and damaged.size == len(damaged.payload)
    assert m.attachments[0].payload == b"%PDF-1.4 facture"


def test_a_10000_part_message_is_read_up_to_max_parts_and_the_rest_counted():
    photo = base64.b64encode(b"\xff\xd8\xff\xe0" + b"x" * 60).decode()
    raw = _mixed([("image/jpeg", photo)] * 9_999)
    m = parse(raw)  # its time is a figure (0.49 s idle, the closing note), never an assertion
    assert len(m.attachments) == MAX_PARTS - 2  # the root and the text are parts too
    assert m.notes == ("9,001 more parts not read (a message is read up to 1,000 parts)",)
    assert "TooManyParts" in m.defects and m.text == "Voici."
