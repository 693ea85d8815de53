"""Every real-world mail of ../shared/corpus through the real daemon: each one
ends in the processed or the quarantine folder, none stays, nothing is lost."""
from __future__ import annotations

import os
from pathlib import Path

CORPUS = Path(os.environ.get("MAILDESK_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus")


def test_the_whole_corpus_is_processed_or_quarantined(desk):
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md",) and "LICENSE" not in p.name)
    assert len(files) > 150, CORPUS
    for path in files:
        desk.deliver(path.read_bytes())
    result = desk.once()
    processed, quarantined = desk.folder("maildesk/processed"), desk.folder("maildesk/quarantine")
    assert desk.folder("INBOX") == 0
    assert processed + quarantined == len(files)
    rows = desk.rows("SELECT reason FROM quarantine")
    assert len(rows) == quarantined and all(r["reason"] for r in rows)
    assert result.stderr.count("quarantined") == quarantined
    # bounces and other robots never got an automatic answer
    acks = desk.rows("SELECT rcpt FROM outbox WHERE kind = 'ack'")
    assert all("mailer-daemon" not in r["rcpt"].lower() and "postmaster" not in r["rcpt"].lower() for r in acks)
    print(f"corpus: {len(files)} mails, {processed} processed, {quarantined} quarantined, {len(acks)} acknowledged")
