"""Every sample mail parses or is set aside with a reason: the project's own (tests/corpus, one per
MIME shape, charset and robot kind) always, and the real-world ones of ../shared/corpus when they
are there (MAILDESK_CORPUS overrides the location; without them those tests are skipped, with the
reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildesk.inbound.parse import InboundMail, ParseError, parse
from tests.support import NO_SHARED_CORPUS, OWN_CORPUS, SHARED_CORPUS, own_corpus, shared_corpus, shared_params

OWN = own_corpus()
FILES = shared_corpus()
BOUNCES = [p for p in FILES if p.parent.name == "bounces" and p.suffix == ".eml"]
REPLY_BODIES = [p for p in FILES if p.parent.name == "email-reply-parser" and p.suffix == ".txt"]


def _id(path: Path | None) -> str:
    return "none" if path is None else str(path.relative_to(SHARED_CORPUS))


def test_own_corpus_is_present_and_indexed():
    assert len(OWN) >= 30, OWN_CORPUS
    index = (OWN_CORPUS / "README.md").read_text(encoding="utf-8")
    assert all(f"`{p.name}`" in index for p in OWN), "every sample mail has a line in tests/corpus/README.md"
    assert {p.name.split("-")[0] for p in OWN} == {"human", "auto"}


def test_shared_corpus_is_present():
    if not SHARED_CORPUS.is_dir():
        pytest.skip(NO_SHARED_CORPUS)
    assert FILES, f"no corpus found at {SHARED_CORPUS} (set MAILDESK_CORPUS)"
    assert BOUNCES and REPLY_BODIES


def check_parses_or_is_refused(raw: bytes) -> InboundMail | None:
    try:
        mail = parse(raw)
    except ParseError as exc:
        assert exc.reason.strip()
        assert "\n" not in exc.reason
        return None
    assert isinstance(mail, InboundMail)
    assert mail.from_addr
    assert mail.size == len(raw)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert "\n" not in mail.subject and len(mail.subject) <= 500
    assert "\n" not in mail.from_name and len(mail.from_name) <= 200
    assert len(mail.reply_text) <= len(mail.text)
    assert mail.language in ("fr", "en")
    assert mail.date is None or mail.date.tzinfo is not None
    for attachment in mail.attachments:
        assert attachment.filename and "/" not in attachment.filename and "\\" not in attachment.filename
        assert attachment.size == len(attachment.payload)
    return mail


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_every_own_sample_parses_and_robots_are_told_from_people(path: Path):
    mail = check_parses_or_is_refused(path.read_bytes())
    assert mail is not None, "our own samples are all mail maildesk handles"
    if path.name.startswith("human-"):
        assert mail.auto_reason is None and mail.text.strip()
    else:
        assert mail.auto_reason, "automatic mail must never get an automatic reply"


@pytest.mark.parametrize("path", shared_params(FILES), ids=_id)
def test_every_file_parses_or_is_refused_with_reason(path: Path):
    check_parses_or_is_refused(path.read_bytes())


@pytest.mark.parametrize("path", shared_params(BOUNCES), ids=_id)
def test_bounces_are_automatic(path: Path):
    mail = parse(path.read_bytes())
    if path.name.startswith("is-not-bounce-"):
        assert mail.auto_reason is None
        assert mail.bounce_of == ()
    else:
        assert mail.auto_reason, "a delivery report or abuse report must never get an automatic reply"


@pytest.mark.parametrize("path", shared_params(REPLY_BODIES), ids=_id)
def test_reply_bodies_keep_a_reply(path: Path):
    body = path.read_bytes()
    raw = b"From: Client <client@example.com>\nTo: support@imolocale.fr\nSubject: Re: test\n\n" + body
    mail = parse(raw)
    assert mail.text
    assert mail.reply_text.strip()
    assert len(mail.reply_text) <= len(mail.text)
