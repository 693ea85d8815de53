"""The retention sweep (issue 17) through the real daemon, Dovecot, SMTP and SQLite file, with time
moved by freezegun: a complaint closed at T is anonymised by the clock at T + 1095 days and not
an hour before, its statistics kept; an open one never; `enabled = false` never; a batch larger
than `batch_size` spreads over passes; the digest counts them; a terminated seller goes too."""
from __future__ import annotations

from datetime import datetime, timedelta

from freezegun import freeze_time

from maildesk.service import digest
from maildesk.store.db import from_iso
from tests.integration.test_clock import once_at
from tests.integration.test_intake import ref_of
from tests.integration.test_privacy import database_bytes
from tests.integration.test_sellers import T0, H, cli_at
from tests.support import mail

DAYS = 1095
STATS = "ref, level, status, first_contact, opened_at, acked_at, first_staff_answer_at, resolved_at, closed_at, " \
        "rating, rated_at, category, seller_id"


def closed_complaint(desk, sender: str, at: datetime, name: str = "Camille Martin") -> str:
    """A complaint from `sender`, resolved, then rated 4/5 by its customer (which closes it)."""
    desk.deliver(mail(sender=sender, name=name, body=f"Bonjour, colis perdu. Signé {name}."), msg_time=at)
    sent = once_at(desk, at + timedelta(minutes=1))
    ref = ref_of(next(m for m in sent if sender in str(m["To"])))
    assert cli_at(desk, at + 2 * H, "resolve", ref, "--note", "Remboursé.")[0] == 0
    desk.deliver(mail(sender=sender, name=name, subject=f"Re: [{ref}] Colis jamais reçu", body="4/5, merci"),
                 msg_time=at + 3 * H)
    once_at(desk, at + 3 * H)
    assert desk.rows("SELECT status FROM complaints WHERE ref = ?", ref)[0]["status"] == "closed"
    return ref


def last_moment(desk, ref: str) -> datetime:
    row = desk.rows("SELECT max(c.closed_at, (SELECT max(at) FROM messages m WHERE m.complaint_id = c.id)) AS t "
                    "FROM complaints c WHERE ref = ?", ref)[0]
    return from_iso(row["t"])


def customer(desk, ref: str) -> str:
    return desk.rows("SELECT customer_addr FROM complaints WHERE ref = ?", ref)[0]["customer_addr"]


def test_anonymised_at_the_limit_not_an_hour_before_statistics_kept_open_ones_never(desk):
    desk.write_config(digest={"enabled": False})
    ref = closed_complaint(desk, "camille@example.fr", T0)
    desk.deliver(mail(sender="bob@example.org", name="Bob Durand", body="Ma bouilloire fuit."), msg_time=T0 + 4 * H)
    once_at(desk, T0 + 4 * H + timedelta(minutes=1))
    [live] = [r["ref"] for r in desk.rows("SELECT ref FROM complaints WHERE status = 'open'")]
    t = last_moment(desk, ref)
    stats = dict(desk.rows(f"SELECT {STATS} FROM complaints WHERE ref = ?", ref)[0])
    assert stats["rating"] == 4 and stats["resolved_at"] and stats["closed_at"]

    once_at(desk, t + timedelta(days=DAYS) - H)
    assert customer(desk, ref) == "camille@example.fr"  # an hour short: kept
    assert desk.rows("SELECT count(*) AS n FROM events WHERE kind = 'anonymised'")[0]["n"] == 0

    once_at(desk, t + timedelta(days=DAYS))
    assert customer(desk, ref).endswith("@erased.invalid")
    assert dict(desk.rows(f"SELECT {STATS} FROM complaints WHERE ref = ?", ref)[0]) == stats
    row = desk.rows("SELECT customer_name, subject, anonymised_at FROM complaints WHERE ref = ?", ref)[0]
    assert (row["customer_name"], row["subject"]) == ("", "[erased]") and row["anonymised_at"]
    texts = desk.rows("SELECT m.body, m.raw, m.from_addr FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                      "WHERE c.ref = ?", ref)
    assert texts and all(m["raw"] is None and "Camille" not in (m["body"] or "") and
                         "camille@" not in (m["from_addr"] or "") for m in texts)
    [ev] = desk.rows("SELECT actor FROM events e JOIN complaints c ON c.id = e.complaint_id "
                     "WHERE c.ref = ? AND e.kind = 'anonymised'", ref)
    assert ev["actor"] == "retention"

    # the open complaint, as old, never; Bob's details stay
    once_at(desk, t + timedelta(days=3 * DAYS))
    assert customer(desk, live) == "bob@example.org"

    # the digest counts it over the last 24 h, and says nothing waits
    app = desk.app()
    try:
        doc = digest.build(app.store, app.cfg, t + timedelta(days=DAYS, hours=1))
        later = digest.build(app.store, app.cfg, t + timedelta(days=DAYS + 2))
        fr, en = digest.render(app.templates, app.cfg, doc), digest.render(app.templates, app.cfg, doc, lang="en")
    finally:
        app.close()
    text = fr.text
    assert (doc["retention"]["complaints"], doc["retention"]["next_due"]) == (1, None)
    assert later["retention"]["complaints"] == 0
    assert "1 réclamation et 0 vendeur anonymisé en 24 h" in text and "aucune réclamation close en attente" in text
    assert "1 complaint and 0 sellers anonymised in 24 h" in en.text and "1 complaint, 0 sellers" in en.html


def test_disabled_never_anonymises(desk):
    desk.write_config(retention={"enabled": False}, digest={"enabled": False})
    ref = closed_complaint(desk, "camille@example.fr", T0)
    once_at(desk, last_moment(desk, ref) + timedelta(days=2 * DAYS))
    assert customer(desk, ref) == "camille@example.fr"
    app = desk.app()
    try:
        assert digest.build(app.store, app.cfg, T0)["retention"] == {"enabled": False}
    finally:
        app.close()


def test_a_batch_larger_than_batch_size_spreads_over_passes_and_the_digest_says_when_next(desk):
    desk.write_config(retention={"batch_size": 2}, digest={"enabled": False})
    refs = [closed_complaint(desk, f"client{i}@example.fr", T0 + i * 5 * H, name=f"Client {i}") for i in range(3)]
    moments = [last_moment(desk, r) for r in refs]
    app = desk.app()
    try:
        doc = digest.build(app.store, app.cfg, moments[0] + timedelta(days=DAYS) - H)
    finally:
        app.close()
    assert doc["retention"]["next_due"] == moments[0] + timedelta(days=DAYS) and not doc["retention"]["due_now"]

    after_all = moments[-1] + timedelta(days=DAYS)
    once_at(desk, after_all)
    assert [customer(desk, r).endswith("@erased.invalid") for r in refs] == [True, True, False]  # oldest first
    app = desk.app()
    try:
        assert digest.build(app.store, app.cfg, after_all)["retention"]["due_now"]  # one still waits
    finally:
        app.close()
    once_at(desk, after_all + timedelta(minutes=1))
    assert all(customer(desk, r).endswith("@erased.invalid") for r in refs)


def test_a_terminated_quiet_seller_is_anonymised_strikes_kept_and_the_night_vacuums(desk):
    path = desk.dir / "sellers.csv"
    path.write_text("id;shop_name;address;phone\nS-1042;Boutique Lumière;contact@boutique-lumiere.example;0601020304\n"
                    "S-7;Théière Bleue;service@theiere-bleue.example;\n", encoding="utf-8")
    desk.write_config(digest={"enabled": False}, retention={"sellers_after_days": 400})
    assert cli_at(desk, T0, "seller", "import", str(path), "--by", "ops")[0] == 0
    assert cli_at(desk, T0 + H, "seller", "terminate", "S-1042", "--reason", "fraude", "--by", "bob")[0] == 0
    strikes = desk.rows("SELECT count(*) AS n FROM seller_strikes WHERE seller_id = 'S-1042'")[0]["n"]

    once_at(desk, T0 + timedelta(days=399))
    assert desk.rows("SELECT address FROM sellers WHERE id = 'S-1042'")[0]["address"] == "contact@boutique-lumiere.example"
    night = (T0 + timedelta(days=401)).replace(hour=1)  # 02:00 Paris: before [retention] scrub_at
    once_at(desk, night)
    rows = {r["id"]: r for r in desk.rows("SELECT * FROM sellers")}
    gone = rows["S-1042"]
    assert (gone["shop_name"], gone["phone"], gone["status"]) == ("[erased]", None, "terminated")
    assert gone["address"].endswith("@erased.invalid") and gone["anonymised_at"]
    assert rows["S-7"]["address"] == "service@theiere-bleue.example"  # active: kept
    assert desk.rows("SELECT count(*) AS n FROM seller_strikes WHERE seller_id = 'S-1042'")[0]["n"] == strikes

    # the file is vacuumed once that night (after [retention] scrub_at, 03:30 Paris), not at each pass
    assert desk.rows("SELECT value FROM state WHERE key = 'retention_scrubbed'") == []
    with freeze_time(night.replace(hour=3), real_asyncio=True):  # 04:00 Paris
        desk.run_once()
    db = database_bytes(desk)["db"]  # SQLite: the file; PostgreSQL: its live rows
    assert desk.rows("SELECT value FROM state WHERE key = 'retention_scrubbed'")
    assert b"boutique-lumiere" not in db and b"0601020304" not in db
