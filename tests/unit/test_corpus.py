"""Every real-world message in the shared corpus parses or is set aside with a reason.

The corpus lives next to the repository (../shared/corpus); MAILDESK_CORPUS
overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maildesk.mail import InboundMail, ParseError, parse

CORPUS = Path(
    os.environ.get("MAILDESK_CORPUS") or Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
)
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []
BOUNCES = [p for p in FILES if p.parent.name == "bounces" and p.suffix == ".eml"]
REPLY_BODIES = [p for p in FILES if p.parent.name == "email-reply-parser" and p.suffix == ".txt"]


def _id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def test_corpus_is_present():
    assert FILES, f"no corpus found at {CORPUS} (set MAILDESK_CORPUS)"
    assert BOUNCES and REPLY_BODIES


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_file_parses_or_is_refused_with_reason(path: Path):
    raw = path.read_bytes()
    try:
        mail = parse(raw)
    except ParseError as exc:
        assert exc.reason.strip()
        assert "\n" not in exc.reason
        return
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


@pytest.mark.parametrize("path", BOUNCES, ids=_id)
def test_bounces_are_automatic(path: Path):
    mail = parse(path.read_bytes())
    if path.name.startswith("is-not-bounce-"):
        assert mail.auto_reason is None
        assert mail.bounce_of == ()
    else:
        assert mail.auto_reason, "a delivery report or abuse report must never get an automatic reply"


@pytest.mark.parametrize("path", REPLY_BODIES, ids=_id)
def test_reply_bodies_keep_a_reply(path: Path):
    body = path.read_bytes()
    raw = b"From: Client <client@example.com>\nTo: support@imolocale.fr\nSubject: Re: test\n\n" + body
    mail = parse(raw)
    assert mail.text
    assert mail.reply_text.strip()
    assert len(mail.reply_text) <= len(mail.text)
