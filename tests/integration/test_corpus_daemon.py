"""Every sample mail through the real daemon: each one ends in the processed or the quarantine
folder, none stays, nothing is lost, no robot is answered. The project's own samples
(tests/corpus) always; the real-world ones of ../shared/corpus when they are there."""
from __future__ import annotations

import pytest

from tests.support import NO_SHARED_CORPUS, SHARED_CORPUS, own_corpus, shared_corpus


def through_the_daemon(desk, files) -> tuple[int, int, list]:
    for path in files:
        desk.deliver(path.read_bytes())
    result = desk.once()
    processed, quarantined = desk.folder("maildesk/processed"), desk.folder("maildesk/quarantine")
    assert desk.folder("INBOX") == 0
    assert processed + quarantined == len(files)
    rows = desk.rows("SELECT reason FROM quarantine")
    assert len(rows) == quarantined and all(r["reason"] for r in rows)
    assert result.stderr.count("quarantined") == quarantined
    acks = desk.rows("SELECT rcpt FROM outbox WHERE kind = 'ack'")
    # bounces and other robots never got an automatic answer
    assert all("mailer-daemon" not in r["rcpt"].lower() and "postmaster" not in r["rcpt"].lower() for r in acks)
    return processed, quarantined, acks


def test_the_own_corpus_is_processed_and_only_people_are_answered(desk):
    files = own_corpus()
    processed, quarantined, acks = through_the_daemon(desk, files)
    answered = {r["rcpt"] for r in acks}
    for robot in ("abuse@isp.example", "news@shop.example", "no-reply@carrier.example", "robot@example.net",
                  "bob@example.org", "attacker@evil.test"):
        assert robot not in " ".join(answered), robot
    assert any("camille@example.fr" in r for r in answered) and any("taro@example.jp" in r for r in answered)
    print(f"own corpus: {len(files)} mails, {processed} processed, "
          f"{quarantined} quarantined, {len(acks)} acknowledged")



def test_the_whole_shared_corpus_is_processed_or_quarantined(desk):
    if not SHARED_CORPUS.is_dir():
        pytest.skip(NO_SHARED_CORPUS)
    files = [p for p in shared_corpus() if p.suffix not in (".md",) and "LICENSE" not in p.name]
    assert len(files) > 150, SHARED_CORPUS
    processed, quarantined, acks = through_the_daemon(desk, files)
    print(f"corpus: {len(files)} mails, {processed} processed, {quarantined} quarantined, {len(acks)} acknowledged")
