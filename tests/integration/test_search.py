"""`maildesk search`: what arrives by mail is found at once, accents ignored, and any text is an
answer, never an FTS5 syntax error."""
from __future__ import annotations

import json
import sqlite3

import pytest

from maildesk.core.addresses import mailbox_key
from maildesk.store import migrations
from tests.integration.test_intake import ref_of
from tests.integration.test_staff import CS, staff_reply
from tests.support import mail


def search(desk, *args):
    result = desk.cli("search", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def two(desk):
    desk.deliver(mail(message_id="<c1@example.fr>", subject="Colis jamais reçu",
                      body="Bonjour, la lampe commandée n'est jamais arrivée."))
    desk.deliver(mail(sender="paul@example.com", name="Paul Lefèvre", message_id="<p1@example.com>",
                      subject="Wrong teapot", body="The seller sent a red teapot instead of a blue one."))
    desk.once()
    acks = {m["To"].addresses[0].addr_spec: ref_of(m) for m in desk.sent() if "[" in m["Subject"]
            and m["To"].addresses[0].addr_spec in ("camille@example.fr", "paul@example.com")}
    return acks["camille@example.fr"], acks["paul@example.com"]


def test_search_finds_accented_words_from_plain_ones_in_subjects_bodies_and_names(desk, two):
    camille, paul = two
    assert [h["ref"] for h in search(desk, "recu")] == [camille]
    assert [h["ref"] for h in search(desk, "arrivee")] == [camille]
    hit, = search(desk, "lefevre")
    assert hit["ref"] == paul and "[Lefèvre]" in hit["snippet"]
    assert [h["ref"] for h in search(desk, "teapot")] == [paul]
    assert search(desk, "parapluie") == []


def test_our_own_mail_is_not_indexed_and_staff_notes_are(desk, two):
    camille, _ = two
    # every acknowledgement says "nous avons bien reçu" / "we have received": only Camille wrote "reçu"
    assert [h["ref"] for h in search(desk, "received")] == []
    [note] = [m for m in desk.sent(to=CS) if camille in m["Subject"]]
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#note\nTransporteur Chronopost relancé"))
    desk.once()
    hit, = search(desk, "chronopost relance")
    assert hit["ref"] == camille and hit["found_in"] == "note"


@pytest.mark.parametrize("text", ['"reçu', "AND", "*", "(recu", "recu)", "NEAR(", "colis -", "recu:", "n'est"])
def test_fts_syntax_is_read_as_plain_words(desk, two, text):
    result = desk.cli("search", "--json", text)
    assert result.returncode == 0, result.stderr
    refs = [h["ref"] for h in json.loads(result.stdout)]
    assert refs == ([two[0]] if any(w in text for w in ("recu", "reçu", "colis", "n'est")) else [])


def test_prefixes_phrases_and_exclusions(desk, two):
    camille, paul = two
    assert [h["ref"] for h in search(desk, "arriv*")] == [camille]
    assert [h["ref"] for h in search(desk, "tea*")] == [paul]
    assert [h["ref"] for h in search(desk, '"red teapot"')] == [paul]
    assert search(desk, '"teapot red"') == []
    assert [h["ref"] for h in search(desk, "lampe NOT teapot")] == [camille]
    assert search(desk, "lampe NOT arrivee") == []


def test_since_and_limit_and_a_bad_date(desk, two):
    assert len(search(desk, "colis OR teapot")) == 2
    assert len(search(desk, "colis OR teapot", "--limit", "1")) == 1
    assert search(desk, "colis OR teapot", "--since", "2999-01-01") == []
    bad = desk.cli("search", "colis", "--since", "yesterday")
    assert bad.returncode == 2 and "--since wants a date" in bad.stderr


@pytest.mark.sqlite_only  # an SQLite file at schema 10, migrated
def test_migration_indexes_existing_complaints(desk):
    """A database from before the index (schema 10) holding a complaint: `maildesk migrate` indexes it."""
    path = desk.dir / "maildesk.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("mailbox_key", 1, mailbox_key, deterministic=True)
    for _, statements in migrations.steps(0)[:10]:
        for sql in statements:
            conn.execute(sql)
    conn.execute("INSERT INTO complaints(ref, customer_addr, customer_name, subject, lang, level, status, "
                 "first_contact, opened_at) VALUES ('IMO-OLD001', 'camille@example.fr', 'Camille Martin', "
                 "'Colis jamais reçu', 'fr', 1, 'open', '2026-11-01T09:00:00+00:00', '2026-11-01T09:00:00+00:00')")
    conn.execute("INSERT INTO messages(complaint_id, message_id, direction, kind, at, from_addr, subject, body) "
                 "VALUES (1, '<o@example.fr>', 'in', 'customer', '2026-11-01T09:00:00+00:00', 'camille@example.fr', "
                 "'Colis', 'La lampe n''est jamais arrivée.')")
    conn.execute("PRAGMA user_version = 10")
    conn.close()
    assert desk.cli("migrate").returncode == 0
    assert [h["ref"] for h in search(desk, "arrivee")] == ["IMO-OLD001"]
    assert [h["ref"] for h in search(desk, "recu")] == ["IMO-OLD001"]


def test_seller_names_are_found_once_linked_and_renamed(desk, two):
    camille, _ = two
    sellers = desk.dir / "sellers.csv"
    sellers.write_text("id,shop_name,address\ns1,Boutique Lumière,s1@shop.test\n")
    assert desk.cli("seller", "import", str(sellers)).returncode == 0
    assert search(desk, "lumiere") == []  # not linked to any complaint yet
    assert desk.cli("link", camille, "s1").returncode == 0
    hit, = search(desk, "lumiere")
    assert hit["ref"] == camille and hit["found_in"] == "seller"
    sellers.write_text("id,shop_name,address\ns1,Maison Éclat,s1@shop.test\n")
    assert desk.cli("seller", "import", str(sellers)).returncode == 0
    assert search(desk, "lumiere") == [] and [h["ref"] for h in search(desk, "eclat")] == [camille]
