"""core/file_rules.py: what a mail may carry under Gmail's limits, decided before it is queued."""
from maildesk.config.sections import GMAIL_BLOCKED
from maildesk.core.file_rules import (
    HEADERS_PER_FILE, MESSAGE_HEADERS, Candidate, Held, blocked_suffix, encoded_size, pack,
)

MB = 1024 * 1024


def test_encoded_size_is_base64_with_line_breaks():
    import base64
    for size in (0, 1, 2, 3, 57, 58, 1000, 12345):
        encoded = base64.encodebytes(b"x" * size)  # 76-character lines, LF: one byte less per line than CRLF
        assert encoded_size(size) == len(encoded) + encoded.count(b"\n")


def test_blocked_suffixes_ignore_case_and_trailing_dots():
    assert blocked_suffix("Setup.EXE", GMAIL_BLOCKED) == ".exe"
    assert blocked_suffix("facture.pdf.exe. ", GMAIL_BLOCKED) == ".exe"
    assert blocked_suffix("dir/x.js", GMAIL_BLOCKED) == ".js"
    assert blocked_suffix("photo.jpg", GMAIL_BLOCKED) is None
    assert blocked_suffix("notes.json", GMAIL_BLOCKED) is None  # .js is a suffix of the name, not of ".json"


def test_a_blocked_type_or_a_blocked_name_inside_an_archive_is_held():
    files = [Candidate("a", "photo.jpg", 1000), Candidate("b", "setup.exe", 10),
             Candidate("c", "photos.zip", 100, inner=("colis.jpg", "x/run.js"))]
    p = pack(files, max_message_bytes=25 * MB, text_bytes=1000, blocked=GMAIL_BLOCKED)
    assert p.attached == ["a"]
    assert p.held == [Held("b", "blocked", "setup.exe"), Held("c", "blocked", "x/run.js")]


def test_an_archive_that_cannot_be_looked_into_is_held():
    p = pack([Candidate("z", "a.zip", 10, unreadable="password-protected archive inside")],
             max_message_bytes=25 * MB, text_bytes=0, blocked=GMAIL_BLOCKED)
    assert p.held == [Held("z", "unreadable", "password-protected archive inside")]


def test_files_fill_the_mail_in_order_and_the_rest_is_listed():
    photos = [Candidate(n, f"p{n}.jpg", 6 * MB) for n in range(5)]  # 30 MB: about 41 MB once encoded
    p = pack(photos, max_message_bytes=25 * MB, text_bytes=2000, blocked=GMAIL_BLOCKED)
    used = MESSAGE_HEADERS + 2000 + sum(encoded_size(6 * MB) + HEADERS_PER_FILE for _ in p.attached)
    assert p.attached == [0, 1, 2] and used <= 25 * MB
    assert used + encoded_size(6 * MB) + HEADERS_PER_FILE > 25 * MB  # a fourth would not have fitted
    assert [h.reason for h in p.held] == ["no_room", "no_room"]


def test_a_smaller_file_after_a_full_mail_still_goes():
    files = [Candidate("big", "a.jpg", 17 * MB), Candidate("big2", "b.jpg", 10 * MB), Candidate("s", "c.jpg", MB)]
    p = pack(files, max_message_bytes=25 * MB, text_bytes=0, blocked=GMAIL_BLOCKED)
    assert p.attached == ["big", "s"] and p.held == [Held("big2", "no_room")]


def test_one_file_over_the_whole_limit_is_too_big_and_unkept_files_are_said_so():
    files = [Candidate("huge", "film.mov", 19 * MB), Candidate("gone", "x.pdf", 5, kept=False)]
    p = pack(files, max_message_bytes=25 * MB, text_bytes=0, blocked=GMAIL_BLOCKED)
    assert p.attached == [] and p.held == [Held("huge", "too_big"), Held("gone", "not_kept")]


def test_the_limit_is_the_configured_one():
    files = [Candidate("a", "a.pdf", 700 * 1024)]
    assert pack(files, max_message_bytes=MB, text_bytes=0, blocked=()).attached == ["a"]
    assert pack(files, max_message_bytes=MB, text_bytes=100 * 1024, blocked=()).held == [Held("a", "too_big")]
