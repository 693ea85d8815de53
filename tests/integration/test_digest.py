"""The daily digest's numbers over complaints played at known times, and the
clock job that sends it exactly once a day, across restarts."""
from __future__ import annotations

import io
import json
import random
import sqlite3
import statistics
from contextlib import closing
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy as email_policy

import pytest
from freezegun import freeze_time

from maildesk.service import digest
from maildesk.core import replay
from maildesk import logs
from maildesk.app import App
from maildesk.daemon import Daemon
from maildesk.store.db import iso
from tests.integration.conftest import config_storage
from tests.support import make_config, mail

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc)  # 08:00 in Paris
H = timedelta(hours=1)
D = timedelta(days=1)
SEEN = 2 * 60  # every mail is picked up two minutes after it arrives


@pytest.fixture
def app(tmp_path, storage):
    a = App(make_config(tmp_path, digest={"enabled": True}, storage=config_storage(storage)))
    yield a
    a.close()


def arrive(app, at, subject, sender):
    with app.store.transaction():
        return app.workflow.receive(mail(sender=sender, subject=subject, date=at), at,
                                    at + timedelta(seconds=SEEN)).ref


def staff_answer(app, ref, at):
    with app.store.transaction():
        app.workflow.receive(mail(sender="cs@imolocale.test", name="", subject=f"Re: [{ref}] suivi",
                                  body="Nous avons contacté le vendeur."), at, at)


def customer_says(app, ref, at, text, sender):
    with app.store.transaction():
        app.workflow.receive(mail(sender=sender, subject=f"Re: [{ref}] note", body=text), at, at)


def resolve(app, ref, at):
    with app.store.transaction():
        app.workflow.resolve(ref, "Remboursé.", "cli", at)


def sweep(app, at):
    with app.store.transaction():
        app.workflow.sweep(at)


@pytest.fixture
def played(app):
    """Seven complaints; their story in the comments, NOW = 24/11 07:00 UTC."""
    refs = {}
    refs["G"] = arrive(app, NOW - 20 * D, "Vieux dossier", "g@example.fr")         # resolved 19 days ago
    resolve(app, refs["G"], NOW - 19 * D)
    refs["D"] = arrive(app, NOW - 6 * D, "Colis perdu", "d@example.fr")             # > 5 days, level 3
    refs["F"] = arrive(app, NOW - 3 * D, "Remboursement", "f@example.fr")           # resolved, rated 4
    staff_answer(app, refs["F"], NOW - 3 * D + 2 * H)
    resolve(app, refs["F"], NOW - 3 * D + 20 * H)
    refs["C"] = arrive(app, NOW - 60 * H, "Article cassé", "c@example.fr")          # 60 h, level 3
    refs["B"] = arrive(app, NOW - 30 * H, "Mauvaise taille", "b@example.fr")        # 30 h, level 2
    customer_says(app, refs["F"], NOW - 40 * H, "4", "f@example.fr")
    refs["E"] = arrive(app, NOW - 10 * H, "Double prélèvement", "e@example.fr")     # solved the same day
    staff_answer(app, refs["E"], NOW - 9 * H)
    resolve(app, refs["E"], NOW - 8 * H)
    refs["A"] = arrive(app, NOW - 2 * H, "Colis jamais reçu", "a@example.fr")       # 2 h, level 1
    customer_says(app, refs["E"], NOW - 3 * H, "5", "e@example.fr")
    for at in (NOW - 36 * H, NOW - 20 * H, NOW - 12 * H, NOW - 6 * H, NOW):  # the daemon was not always up
        sweep(app, at)
    return refs


def test_counts_levels_and_ages(app, played):
    doc = digest.build(app.store, app.cfg, NOW)
    assert doc["date"] == "2026-11-24"
    assert doc["counts"] == {"opened": {"day": 2, "total": 7}, "resolved": {"day": 1, "total": 3},
                             "open": {"day": 1, "total": 4}}
    assert doc["open_by_level"] == {1: 1, 2: 1, 3: 2}
    assert doc["open_by_age"] == {"lt24h": {1: 1, 2: 0, 3: 0}, "24to48h": {1: 0, 2: 1, 3: 0},
                                  "2to5d": {1: 0, 2: 0, 3: 1}, "gt5d": {1: 0, 2: 0, 3: 1}}


def test_missed_and_coming_deadlines(app, played):
    doc = digest.build(app.store, app.cfg, NOW)
    # D's 5 days at NOW-20h, C's 48 h at NOW-12h, B's 24 h at NOW-6h; C's own 24 h (NOW-36h) was the day before
    assert [(m["deadline"], m["ref"], m["at"]) for m in doc["missed"]] == [
        ("5d", played["D"], NOW - 20 * H), ("48h", played["C"], NOW - 12 * H), ("24h", played["B"], NOW - 6 * H)]
    assert doc["missed"][2]["subject"] == "Mauvaise taille" and doc["missed"][2]["due"] == NOW - 6 * H
    assert [(m["deadline"], m["ref"], m["due"]) for m in doc["due_soon"]] == [
        ("48h", played["B"], NOW + 18 * H), ("24h", played["A"], NOW + 22 * H)]


def test_medians_and_ratings(app, played):
    doc = digest.build(app.store, app.cfg, NOW)
    m = doc["medians"]
    assert m["ack"] == {7: {"seconds": SEEN, "n": 6}, 30: {"seconds": SEEN, "n": 7}}
    assert m["first_answer"][7] == {"seconds": 1.5 * 3600, "n": 2}  # 1 h (E) and 2 h (F)
    assert m["resolution"][7] == {"seconds": 11 * 3600, "n": 2}     # 2 h (E) and 20 h (F)
    assert m["resolution"][30] == {"seconds": 20 * 3600, "n": 3}    # and 24 h (G)
    r = doc["ratings"]
    assert [(x["ref"], x["rating"], x["low"]) for x in r["recent"]] == [(played["E"], 5, False)]
    assert r["average"] == {1: {"average": 5.0, "n": 1}, 7: {"average": 4.5, "n": 2}, 30: {"average": 4.5, "n": 2}}


def test_backlog_trend_is_rebuilt_from_the_audit_trail(app, played):
    trend = digest.build(app.store, app.cfg, NOW)["trend"]
    assert len(trend) == 14 and trend[-1]["date"] == "2026-11-24" and trend[0]["date"] == "2026-11-11"
    by_date = {t["date"]: t["levels"] for t in trend}
    assert by_date["2026-11-24"] == {1: 1, 2: 1, 3: 2}
    assert by_date["2026-11-23"] == {1: 1, 2: 1, 3: 1}  # B new; C at 2 since NOW-36h; D at 3 since then
    assert by_date["2026-11-22"] == {1: 2, 2: 0, 3: 0}  # C and D, not yet swept; F resolved at NOW-52h
    assert by_date["2026-11-11"] == {1: 0, 2: 0, 3: 0}


def test_mail_trouble_quarantine_suspicious_and_sellers(app, played):
    store = app.store
    with store.transaction():
        first, second = [r["id"] for r in store.all("SELECT id FROM outbox ORDER BY id LIMIT 2")]
        store.update("outbox", first, {"status": "failed", "attempts": 1, "last_error": "550 5.1.1 user unknown"})
        store.update("outbox", second, {"status": "queued", "attempts": 2, "last_error": "451 try later"})
        store.conn.execute("UPDATE outbox SET status = 'sent', sent_at = created_at WHERE id > ?", (second,))
        store.insert("quarantine", {"at": iso(NOW - 5 * H), "folder": "q", "sha256": "a" * 64, "sender": "x@y.z",
                                    "subject": "??", "size": 10, "reason": "empty From header"})
        store.insert("quarantine", {"at": iso(NOW - 3 * D), "folder": "q", "sha256": "b" * 64, "size": 10,
                                    "reason": "old", "status": "retried"})
        store.add_event(None, NOW - 4 * H, "cs@imolocale.test", "suspicious", why="dmarc=fail", subject="Re: x")
        store.add_event(None, NOW - 30 * H, "cs@imolocale.test", "suspicious", why="too old for this digest")
        store.insert("sellers", {"id": "shop-1", "shop_name": "Lumière", "address": "s@shop.example",
                                 "status": "flagged", "status_reason": "3 unanswered", "status_at": iso(NOW - D),
                                 "created_at": iso(NOW - 9 * D), "updated_at": iso(NOW - D)})
    doc = digest.build(store, app.cfg, NOW)
    assert doc["outbox"]["failed_count"] == 1 and doc["outbox"]["failed"][0]["error"] == "550 5.1.1 user unknown"
    assert doc["outbox"]["retrying_count"] == 1 and doc["outbox"]["retrying"][0]["attempts"] == 2
    assert doc["quarantine"]["held_count"] == 1 and doc["quarantine"]["new"] == 1
    assert doc["quarantine"]["held"][0]["reason"] == "empty From header"
    assert [(s["claimed"], s["why"]) for s in doc["suspicious"]] == [("cs@imolocale.test", "dmarc=fail")]
    assert [(s["id"], s["shop"], s["strikes"]) for s in doc["sellers"]] == [("shop-1", "Lumière", 0)]
    text = digest.render(app.templates, app.cfg, doc).text
    assert "550 5.1.1 user unknown" in text and "empty From header" in text and "Lumière" in text


@pytest.mark.sqlite_only  # drops tables in the file itself
def test_without_the_sellers_tables_the_section_is_left_out(app, played):
    # a database really without them: the seller registry's tables dropped, children first
    with closing(sqlite3.connect(app.cfg.database_path)) as db:
        for table in ("seller_webhooks", "outreach", "seller_strikes", "seller_events", "sellers"):
            db.execute(f"DROP TABLE {table}")
        db.commit()
    doc = digest.build(app.store, app.cfg, NOW)
    assert doc["sellers"] is None
    assert "VENDEURS" not in digest.render(app.templates, app.cfg, doc).text


def test_text_and_html_render_in_both_languages(app, played):
    doc = digest.build(app.store, app.cfg, NOW)
    fr = digest.render(app.templates, app.cfg, doc)
    assert fr.subject == "[maildesk] Digest du 24/11/2026 : 4 en cours, 3 échéances manquées"
    assert "mardi 24 novembre 2026, 08:00" in fr.text and played["D"] in fr.text
    assert "11 h 00" in fr.text and "4,5/5 (2 réponses)" in fr.text
    en = digest.render(app.templates, app.cfg, doc, lang="en")
    assert en.subject == "[maildesk] Digest for 2026-11-24: 4 open, 3 deadlines missed"
    assert "Tuesday 24 November 2026" in en.text and "4.5/5 (2 answers)" in en.text
    for html in (fr.html, en.html):
        assert html.startswith("<!DOCTYPE html>") and played["B"] in html
        assert "class=" not in html and "<img" not in html and "<style" not in html and "http" not in html


def test_subjects_from_customers_are_escaped_in_html(app):
    arrive(app, NOW - H, "<script>alert(1)</script> & co", "x@example.fr")
    html = digest.render(app.templates, app.cfg, digest.build(app.store, app.cfg, NOW)).html
    assert "<script>" not in html and "&lt;script&gt;" in html


CHANGE_KINDS = ("resolved", "closed", "reopened", "escalated", "level_lowered")


def random_histories(store, rnd: random.Random, count: int) -> None:
    """Complaints and audit trails as the workflow writes them and as it never would: no audit trail
    (imported, resolved or closed per the row only, settled before first contact), state changes long
    before the window, before first contact, at the same second, reopened, lowered, staff answers."""
    def moment(days_before=40, days_after=2):
        if rnd.random() < 0.1:  # exactly one of the digest's moments, or the start of its window
            return NOW - rnd.randint(0, 14) * D
        if rnd.random() < 0.3:  # on the hour: deadlines and age limits fall there
            return NOW + timedelta(hours=rnd.randint(-24 * days_before, 24 * days_after))
        return NOW + timedelta(seconds=rnd.randint(-86400 * days_before, 86400 * days_after))
    edges = [  # (status, level, first contact, resolved_at, closed_at, state changes)
        ("open", 1, NOW - 3 * D, None, None, [(NOW, "escalated", {"level": 2})]),  # at the very moment
        ("resolved", 1, NOW - 20 * D, NOW - 14 * D, None, [(NOW - 14 * D, "resolved", {})]),  # the window's start
        ("open", 3, NOW - 30 * D, NOW - 25 * D, None, [(NOW - 29 * D, "escalated", {"level": 3}),
                                                       (NOW - 25 * D, "resolved", {}), (NOW - 20 * D, "reopened", {})]),
        ("open", 2, NOW - 30 * D, None, None, [(NOW - 29 * D, "escalated", {"level": 2}),
                                               (NOW - 28 * D, "level_lowered", {})]),  # no level: keeps 2
        ("resolved", 2, NOW - 9 * D, NOW - 2 * D, None, []),  # imported: no audit trail
        ("closed", 3, NOW - 9 * D, None, None, []),  # closed, but when?
        ("closed", 1, NOW - 5 * D, NOW - 6 * D, NOW - 6 * D, []),  # settled before its first contact
        ("open", 1, NOW - 2 * D, None, None, [(NOW - 3 * D, "escalated", {"level": 3})]),  # before first contact
        ("open", 1, NOW - 2 * D, None, None, [(NOW - D, "escalated", {"level": 2}), (NOW - D, "resolved", {}),
                                              (NOW - D, "reopened", {})]),  # three at the same second
    ]
    with store.transaction():
        for i, (status, level, first, resolved, closed, changes) in enumerate(edges):
            complaint_id = store.insert("complaints", {
                "ref": f"IMO-E{i:05d}", "customer_addr": f"e{i}@example.fr", "subject": "Bord", "level": level,
                "status": status, "first_contact": iso(first), "opened_at": iso(first),
                "resolved_at": iso(resolved) if resolved else None, "closed_at": iso(closed) if closed else None})
            for at, kind, detail in changes:
                store.add_event(complaint_id, at, "x", kind, **detail)
        for i in range(count):
            first = moment()
            settled = rnd.choice([None, None, moment(), first - H])
            row = {"ref": f"IMO-T{i:05d}", "customer_addr": f"c{i}@example.fr", "subject": f"Sujet {i % 7}",
                   "level": rnd.choice([1, 1, 2, 3]), "first_contact": iso(first), "opened_at": iso(first),
                   "status": rnd.choice(["open", "open", "waiting_customer", "resolved", "closed"]),
                   "acked_at": iso(first + timedelta(seconds=rnd.randint(0, 900))) if rnd.random() < 0.9 else None,
                   "resolved_at": iso(settled) if settled else None,
                   "closed_at": iso(moment()) if rnd.random() < 0.3 else None}
            complaint_id = store.insert("complaints", row)
            for _ in range(rnd.choice([0, 0, 0, 1, 2, 3, 5, 8])):
                kind = rnd.choice([*CHANGE_KINDS, "staff_answered", "staff_asked", "note"])
                detail = {"reason": rnd.choice(["24h", "48h", "staff"])}
                if kind in ("escalated", "level_lowered") and rnd.random() < 0.9:
                    detail["level"] = rnd.choice([1, 2, 3])
                at = rnd.choice([first, first + timedelta(seconds=rnd.randint(-3600, 20 * 86400)), moment()])
                store.insert("events", {"complaint_id": complaint_id, "at": iso(at), "actor": "x", "kind": kind,
                                        "detail": json.dumps(detail)})


def replayed(store, cfg, now: datetime) -> dict:
    """The reference: every complaint replayed from its whole audit trail, counted in Python."""
    since = iso(now - digest.TREND_DAYS * D)
    pasts = []
    for row in store.all("SELECT * FROM complaints WHERE first_contact <= ?", iso(now)):
        if row["status"] not in replay.OPEN_STATUSES and (row["closed_at"] or row["resolved_at"]
                                                           or row["first_contact"]) < since:
            continue  # settled before the window and still so
        events = store.all(f"SELECT * FROM events WHERE complaint_id = ? AND kind IN {CHANGE_KINDS} AND at <= ? "
                           "ORDER BY at, id", row["id"], iso(now))
        pasts.append(replay.replay(dict(row), events))
    open_now = replay.open_at(pasts, now)
    ages = {name: {1: 0, 2: 0, 3: 0} for name, _limit in digest.AGES}
    for row, level in open_now:
        age = now - datetime.fromisoformat(row["first_contact"])
        ages[next(name for name, limit in digest.AGES if limit is None or age < limit)][level] += 1
    answered = {}
    for ev in store.all("SELECT complaint_id, at FROM events WHERE kind IN ('staff_answered', 'staff_asked') "
                        "AND at <= ? ORDER BY at", iso(now)):
        answered.setdefault(ev["complaint_id"], ev["at"])
    first_contact = {r["id"]: r["first_contact"] for r in store.all("SELECT id, first_contact FROM complaints")}
    medians = {}
    for days in (7, 30):
        start = now - timedelta(days=days)
        seconds = [(datetime.fromisoformat(at) - datetime.fromisoformat(first_contact[cid])).total_seconds()
                   for cid, at in answered.items() if datetime.fromisoformat(at) > start]
        medians[days] = {"seconds": statistics.median(seconds) if seconds else None, "n": len(seconds)}
    return {"trend": [replay.backlog(pasts, now - k * D) for k in range(digest.TREND_DAYS - 1, -1, -1)],
            "open": len(open_now), "ages": ages, "due_soon": digest.due_soon(open_now, cfg, now),
            "first_answer": medians}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numbers_are_those_of_replaying_every_complaint(app, seed):
    # the digest replays only the complaints whose state changes in the 14 days and counts the others in SQL
    random_histories(app.store, random.Random(seed), 400)
    for now in (NOW, NOW - 3 * D + 17 * timedelta(seconds=1), NOW + timedelta(microseconds=500_000)):
        doc, want = digest.build(app.store, app.cfg, now), replayed(app.store, app.cfg, now)
        assert [t["levels"] for t in doc["trend"]] == want["trend"]
        assert doc["open_by_level"] == want["trend"][-1] and doc["counts"]["open"]["total"] == want["open"]
        assert doc["open_by_age"] == want["ages"]
        assert len(doc["due_soon"]) == len(want["due_soon"]) and list(doc["due_soon"]) == want["due_soon"][:25]
        assert doc["medians"]["first_answer"] == want["first_answer"]


def test_long_lists_are_shortened_but_counted_in_full(app):
    """However many deadlines fall due, the mail lists the first 25 (it must stay a mail, not a
    gigabyte: SQLite refuses a blob that big) and says how many there are."""
    with app.store.transaction():
        for i in range(300):
            first = NOW - 20 * H + i * timedelta(seconds=10)  # 24 h deadlines from NOW + 4 h, 10 s apart
            complaint_id = app.store.insert("complaints", {
                "ref": f"IMO-L{i:05d}", "customer_addr": f"c{i}@example.fr", "subject": "Colis", "level": 1,
                "status": "open", "first_contact": iso(first), "opened_at": iso(first), "acked_at": iso(first)})
            if i < 40:
                app.store.add_event(complaint_id, NOW - H, "maildesk", "target_missed", due=iso(NOW - H))
    doc = digest.build(app.store, app.cfg, NOW)
    assert len(doc["due_soon"]) == 300 and len(list(doc["due_soon"])) == digest.LIST_LIMIT
    assert [m["ref"] for m in doc["due_soon"]] == [f"IMO-L{i:05d}" for i in range(25)]
    assert doc["due_soon"][0]["due"] == NOW + 4 * H
    assert len(doc["missed"]) == 40 and len(list(doc["missed"])) == digest.LIST_LIMIT
    rendered = digest.render(app.templates, app.cfg, doc)
    assert "ÉCHÉANCES DES 24 PROCHAINES HEURES : 300" in rendered.text
    assert "… et 275 de plus" in rendered.text and "… et 15 de plus" in rendered.text
    assert "… et 275 de plus" in rendered.html
    assert "ÉCHÉANCES MANQUÉES (24 DERNIÈRES HEURES) : 40" in rendered.text
    assert rendered.text.count("IMO-L") == 2 * digest.LIST_LIMIT
    assert "Échéances des 24 prochaines heures <span" in rendered.html and "· 300</span>" in rendered.html
    assert json.loads(json.dumps(doc, default=str))["due_soon"][24]["ref"] == "IMO-L00024"


# --- once a day, across restarts -------------------------------------------------

def digests(store) -> list:
    return store.all("SELECT * FROM outbox WHERE kind = 'digest' ORDER BY id")


def tick(app, at: datetime) -> None:
    with freeze_time(at):
        Daemon(app).tick()


def paris(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=timezone.utc) - H  # Paris is UTC+1 in November


def test_digest_goes_out_once_a_day_across_restarts(tmp_path):
    cfg = make_config(tmp_path, digest={"enabled": True})
    app = App(cfg)
    tick(app, paris(24, 7, 59))
    tick(app, paris(24, 7, 59))
    assert digests(app.store) == []
    tick(app, paris(24, 8, 0))
    tick(app, paris(24, 8, 0))
    assert len(digests(app.store)) == 1
    app.close()

    app = App(cfg)  # a restart on the same database
    tick(app, paris(24, 8, 1))
    tick(app, paris(24, 23, 59))
    assert len(digests(app.store)) == 1
    tick(app, paris(25, 7, 59))
    assert len(digests(app.store)) == 1
    tick(app, paris(25, 8, 0))
    assert len(digests(app.store)) == 2
    assert app.store.get_state("digest_last_sent") == "2026-11-25"
    app.close()

    app = App(cfg)  # down all of the 26th's morning: one digest when it starts again, not one per tick
    tick(app, paris(26, 15, 12))
    tick(app, paris(26, 15, 13))
    rows = digests(app.store)
    assert len(rows) == 3 and rows[-1]["created_at"] == iso(paris(26, 15, 12))
    app.close()


def test_the_queued_digest_is_one_mail_with_text_and_html(tmp_path):
    app = App(make_config(tmp_path, digest={"enabled": True, "to": ["boss@imolocale.test", "ops@imolocale.test"]}))
    try:
        tick(app, paris(24, 8, 0))
        [row] = digests(app.store)
        assert row["audience"] == "admin" and row["routine"] == 1 and row["complaint_id"] is None
        assert json.loads(row["rcpt"]) == ["boss@imolocale.test", "ops@imolocale.test"]
        msg = message_from_bytes(row["raw"], policy=email_policy.default)
        assert msg["Subject"].startswith("[maildesk] Digest du 24/11/2026")
        assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None
    finally:
        app.close()


def test_disabled_digest_is_never_sent(tmp_path):
    app = App(make_config(tmp_path, digest={"enabled": False}))
    try:
        tick(app, paris(24, 9, 0))
        assert digests(app.store) == []
    finally:
        app.close()


def test_a_digest_that_cannot_be_built_is_logged_once_and_the_helpdesk_goes_on(tmp_path):
    # an operator's digest template that divides by the open complaints, on a day with none open
    (tmp_path / "templates" / "fr").mkdir(parents=True)
    (tmp_path / "templates" / "fr" / "digest.txt").write_text(
        "Subject: digest\n\nPart des N3 : {{ 100 * d.open_by_level[3] / d.counts.open.total }} %\n")
    cfg = make_config(tmp_path, digest={"enabled": True}, templates={"dir": str(tmp_path / "templates")})
    app, out = App(cfg), io.StringIO()
    logs.configure(cfg, stream=out)
    try:
        tick(app, paris(24, 8, 0))
        tick(app, paris(24, 8, 1))
        assert digests(app.store) == [] and app.store.get_state("digest_last_sent") is None
        [line] = [line for line in out.getvalue().splitlines() if " digest_failed " in line]
        assert " ERROR digest_failed date=2026-11-24 error=\"ZeroDivisionError: division by zero\"" in line
    finally:
        app.close()
        logs.configure(None, stream=io.StringIO())
