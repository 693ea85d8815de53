"""Categories and the export (issue 18 items 2 and 7), through the public surface: real Dovecot
and SMTP, staff mail, the CLI as admins run it."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest

from tests.integration.conftest import body
from tests.integration.test_intake import ref_of
from tests.integration.test_staff import CS, GOOD_AR, complaint, staff_reply
from tests.support import mail

FORGED_AR = "mx.google.com; dkim=none; spf=softfail smtp.mailfrom=cs@imolocale.test; dmarc=fail header.from=imolocale.test"


def parsed(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def opened(desk):
    """Camille's complaint (her parcel never came), with its staff notification; staff must authenticate."""
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(mail(message_id="<c1@example.fr>", body="Bonjour, mon colis n'est jamais arrivé."))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    return ref_of(ack), note


def test_a_new_complaint_gets_the_suggested_category_shown_to_staff(desk, opened):
    ref, note = opened
    assert complaint(desk, ref)["category"] == "colis non reçu"
    assert "Catégorie  : colis non reçu" in body(note)
    assert "#category NOM" in body(note)
    doc = parsed(desk.cli("show", ref, "--json"))
    assert doc["complaint"]["category"] == "colis non reçu"
    assert "category : colis non reçu" in desk.cli("show", ref).stdout


def test_staff_change_the_category_by_mail_and_list_filters_on_it(desk, opened):
    ref, note = opened
    desk.deliver(mail(sender="paul@example.fr", subject="Remboursement", body="Je veux être remboursé."))
    desk.deliver(staff_reply(note, "#category Remboursement\nLe client veut surtout son argent.",
                             headers={"Authentication-Results": GOOD_AR}))
    desk.once()
    assert complaint(desk, ref)["category"] == "remboursement"
    events = desk.rows("SELECT actor, detail FROM events WHERE kind = 'categorised'")
    assert [(e["actor"], json.loads(e["detail"])) for e in events] == [
        (CS, {"category": "remboursement", "previous": "colis non reçu"})]
    refunds = parsed(desk.cli("list", "--category", "remboursement", "--json"))
    assert len(refunds) == 2 and ref in [r["ref"] for r in refunds]
    assert parsed(desk.cli("list", "--category", "colis non recu", "--json")) == []  # accents forgiven
    refused = desk.cli("list", "--category", "livraison")
    assert refused.returncode == 1 and "--category 'livraison' is not a category" in refused.stderr
    assert "remboursement" in desk.cli("list").stdout


def test_an_unknown_category_gets_staff_the_valid_ones_and_a_forged_one_is_not_obeyed(desk, opened):
    ref, note = opened
    desk.deliver(staff_reply(note, "#category livraison", headers={"Authentication-Results": GOOD_AR}))
    desk.once()
    [answer] = desk.sent(to=CS)
    text = body(answer)
    assert "'livraison' is not a category" in text
    assert "colis non reçu, article endommagé, non conforme, remboursement, retour, paiement, " \
           "vendeur injoignable, autre" in text
    assert desk.sent(to="camille@example.fr") == []
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#category retour", headers={"Authentication-Results": FORGED_AR}))
    desk.once()
    assert complaint(desk, ref)["category"] == "colis non reçu"
    assert desk.sent(to="camille@example.fr") == []


def _seed(desk):
    """Four complaints from customers, two linked to sellers, one subject a formula."""
    for sender, subject, text in (("a@example.fr", "Colis jamais reçu", "Rien reçu."),
                                  ("b@example.fr", "Vase cassé", "Arrivé cassé."),
                                  ("c@example.fr", "=HYPERLINK(\"http://evil.example\",\"clic\")", "Remboursez-moi."),
                                  ("d@example.fr", "-2+3", "Question")):
        desk.deliver(mail(sender=sender, subject=subject, body=text))
    desk.once()
    with desk.db() as conn:
        conn.execute("UPDATE complaints SET seller_id = 'S-1' WHERE customer_addr IN ('a@example.fr', 'b@example.fr')")
        conn.execute("UPDATE complaints SET seller_id = '@S-2' WHERE customer_addr = 'c@example.fr'")
        conn.execute("UPDATE complaints SET rating = 4, status = 'resolved', resolved_at = first_contact "
                     "WHERE customer_addr = 'b@example.fr'")


def test_the_digest_counts_by_category_and_by_seller(desk):
    _seed(desk)
    text = desk.cli("digest").stdout
    section = text[text.index("RÉCLAMATIONS PAR CATÉGORIE"):text.index("SATISFACTION")]
    lines = [" ".join(line.split()) for line in section.splitlines()]
    assert "colis non reçu 1 1" in lines and "article endommagé 1 1" in lines
    assert "remboursement 1 1" in lines and "autre 1 1" in lines
    assert "S-1 colis non reçu 1 1" in lines and "S-1 article endommagé 1 1" in lines
    assert "@S-2 remboursement 1 1" in lines
    html = desk.cli("digest", "--html").stdout
    assert "Réclamations par catégorie" in html and "article endommagé" in html


def test_export_csv_round_trips_with_formula_cells_neutralised(desk, tmp_path):
    _seed(desk)
    since = (date.today() - timedelta(days=1)).isoformat()
    out = tmp_path / "export.csv"
    result = desk.cli("export", "--since", since, "--format", "csv", "--separator", ";", "--out", str(out))
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert len(rows) == 4
    by_subject = {r["subject"]: r for r in rows}
    assert "'=HYPERLINK(\"http://evil.example\",\"clic\")" in by_subject
    assert "'-2+3" in by_subject
    evil = by_subject["'=HYPERLINK(\"http://evil.example\",\"clic\")"]
    assert evil["seller"] == "'@S-2" and evil["category"] == "remboursement"
    vase = by_subject["Vase cassé"]
    assert (vase["status"], vase["rating"], vase["resolution_hours"]) == ("resolved", "4", "0,0")
    assert (vase["deadline_24h"], vase["deadline_48h"], vase["deadline_5d"]) == ("met", "met", "met")
    assert by_subject["Colis jamais reçu"]["deadline_5d"] == "ahead"
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    assert "Rien reçu" not in raw.decode("utf-8-sig")  # no message bodies
    assert "a@example.fr" not in raw.decode("utf-8-sig")  # nor customer addresses


def test_export_json_parses_and_bad_input_is_refused(desk):
    _seed(desk)
    since = (date.today() - timedelta(days=1)).isoformat()
    rows = parsed(desk.cli("export", "--since", since, "--format", "json"))
    assert sorted(r["category"] for r in rows) == ["article endommagé", "autre", "colis non reçu", "remboursement"]
    assert {r["subject"] for r in rows} >= {"=HYPERLINK(\"http://evil.example\",\"clic\")"}  # JSON keeps it as is
    assert all(r["first_contact"].endswith("+00:00") for r in rows)
    assert parsed(desk.cli("export", "--since", "2020-01-01", "--until", "2020-01-31", "--format", "json")) == []
    for args, words in ((("--since", "yesterday"), "--since wants a date like"),
                        (("--since", "2026-11-02", "--until", "2026-11-01"), "is before --since"),
                        (("--since", "2026-11-01", "--separator", "ab"), "--separator must be one character"),
                        (("--since", "2026-11-01", "--out", "/nonexistent/x.csv"), "does not exist")):
        result = desk.cli("export", *args)
        assert result.returncode == 2 and words in result.stderr, result.stderr


def test_the_starter_config_documents_the_shipped_categories():
    import tomllib
    from pathlib import Path

    from maildesk.config.sections import DEFAULT_CATEGORIES
    text = (Path(__file__).parents[2] / "maildesk.toml").read_text()
    block = text[text.index("# [categories]"):text.index("\n[security]")]
    entries = [line[2:] for line in block.splitlines() if line.startswith('# "')]
    documented = tomllib.loads("\n".join(entries))
    assert {k: tuple(v) for k, v in documented.items()} == DEFAULT_CATEGORIES
