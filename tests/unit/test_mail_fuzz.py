"""Mutated real-world mail: parse() returns an InboundMail or raises ParseError, nothing else."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildesk.inbound.parse import InboundMail, ParseError, parse
from tests.support import own_corpus, shared_corpus

# Seeds: the project's own sample mails (tests/corpus) always, the real-world ones of
# ../shared/corpus too when they are there. Small messages keep 200 examples fast; the big ones
# are covered by test_corpus.
SEEDS = [p.read_bytes() for p in [*own_corpus(), *shared_corpus()]
         if not p.name.startswith("LICENSE") and p.stat().st_size <= 64_000]
SEEDS += [
    b"From: Marie <marie@example.fr>\r\nTo: support@imolocale.fr\r\nSubject: =?utf-8?q?commande_n=C2=B0_1234?=\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbonjour\r\n"
    b"--b\r\nContent-Type: image/png; name=\"x.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n",
]

_HEADER_LINE = re.compile(rb"^[A-Za-z-]+:[^\r\n]*\r?\n", re.M)

mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from([0x0D, 0x0A, 0x00, 0x3A, 0x3D, 0x3F, 0x2D])),
    st.tuples(st.just("insert_run"), st.floats(0, 1), st.integers(1, 64)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 200)),
    st.tuples(st.just("dup_header"), st.floats(0, 1), st.integers(1, 50)),
)


def mutate(raw: bytes, ops) -> bytes:
    data = bytearray(raw)
    for kind, where, value in ops:
        pos = int(where * len(data)) if data else 0
        if kind == "flip" and data:
            data[min(pos, len(data) - 1)] ^= value
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = bytes([value])
        elif kind == "insert_run":
            data[pos:pos] = b"\r\n\x00" * value
        elif kind == "delete":
            del data[pos : pos + value]
        elif kind == "dup_header":
            lines = _HEADER_LINE.findall(bytes(data))
            if lines:
                line = lines[pos % len(lines)]
                data[0:0] = line * value
    return bytes(data)


def check(raw: bytes) -> None:
    try:
        mail = parse(raw)
    except ParseError as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    assert isinstance(mail, InboundMail)
    assert mail.from_addr
    assert "\n" not in mail.subject and "\r" not in mail.subject and len(mail.subject) <= 500
    assert "\n" not in mail.from_name and "\r" not in mail.from_name and len(mail.from_name) <= 200
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert len(mail.reply_text) <= len(mail.text)
    assert mail.language in ("fr", "en")
    for attachment in mail.attachments:
        assert attachment.filename and "/" not in attachment.filename and "\\" not in attachment.filename
        assert attachment.size == len(attachment.payload)


def test_the_fuzz_is_seeded_by_every_small_sample():
    """Never silently down to a seed or two: the own corpus alone gives dozens."""
    assert len(SEEDS) >= len([p for p in own_corpus() if p.stat().st_size <= 64_000]) + 1 >= 30


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_corpus_never_crashes(seed, ops):
    check(mutate(seed, ops))


@settings(max_examples=50, deadline=None, database=None)
@given(raw=st.binary(max_size=2000))
def test_random_bytes_never_crash(raw):
    check(raw)
