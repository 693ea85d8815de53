"""The admins' daily digest: what happened in the last 24 h and what needs
attention, computed from the store as of `now` (so any date can be shown
again) and queued like any other mail, text and HTML in one message.

`DigestJob` is the clock job: once local time passes `[digest] send_at`, it
queues today's digest unless the state key `digest_last_sent` already holds
today's date. The check and the queued mail commit together, so a digest
missed while the daemon was down goes out once when it starts, and never
twice in a day, across restarts.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from datetime import date, datetime, time, timedelta, timezone

from maildesk.store import history
from maildesk.core import policy, timefmt
from maildesk.logs import event as log_event
from maildesk.adapters.outbox import Outbox
from maildesk.store.db import Store, from_iso, iso

STATE_KEY = "digest_last_sent"
TREND_DAYS = 14
LIST_LIMIT = 25
DAY = timedelta(days=1)
AGES = (("lt24h", timedelta(hours=24)), ("24to48h", timedelta(hours=48)),
        ("2to5d", timedelta(days=5)), ("gt5d", None))
SUSPICIOUS_KINDS = ("suspicious",)


# --- when ---------------------------------------------------------------------

def send_time(cfg) -> time:
    hh, _, mm = cfg.digest.send_at.partition(":")
    return time(int(hh), int(mm))


def moment_for(cfg, day: date) -> datetime:
    """The digest's moment for a local date: `send_at` that day, in UTC."""
    return datetime.combine(day, send_time(cfg), tzinfo=cfg.tz).astimezone(timezone.utc)


def recipients(cfg) -> tuple[str, ...]:
    return tuple(cfg.digest.to or cfg.teams.admins)


# --- the numbers --------------------------------------------------------------

def one_line(text: str | None, limit: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Shortlist(list):
    """The first items of a longer list, whose len() is the whole count: the digest lists at most
    LIST_LIMIT deadlines but shows how many there are (`|length` in the templates, `len()` here).
    Iterating and indexing give the items kept."""

    def __init__(self, items, total: int):
        super().__init__(items)
        self.total = total

    def __len__(self) -> int:
        return self.total


def build(store: Store, cfg, now: datetime) -> dict:
    """Every number and list the digest shows, as plain values."""
    since = now - DAY
    moments = [now - k * DAY for k in range(TREND_DAYS - 1, -1, -1)]  # oldest first; the last is now
    backlog = _backlog(store, cfg, now, moments)
    opened_day = store.scalar("SELECT count(*) FROM complaints WHERE first_contact > ? AND first_contact <= ?",
                              iso(since), iso(now))
    opened_total = store.scalar("SELECT count(*) FROM complaints WHERE first_contact <= ?", iso(now))
    counts = {
        "opened": {"day": opened_day, "total": opened_total},
        "resolved": {"day": store.scalar(
            "SELECT count(DISTINCT complaint_id) FROM events WHERE kind = 'resolved' AND at > ? AND at <= ?",
            iso(since), iso(now)), "total": opened_total - backlog["open"]},
        "open": {"day": backlog["open_day"], "total": backlog["open"]},
    }
    return {
        "date": now.astimezone(cfg.tz).date().isoformat(),
        "now": now, "since": since,
        "counts": counts,
        "open_by_level": dict(backlog["levels"][-1]),
        "open_by_age": backlog["ages"],
        "missed": _missed(store, since, now),
        "due_soon": backlog["due_soon"],
        "medians": _medians(store, now),
        "ratings": _ratings(store, cfg, since, now),
        "sellers": _sellers(store),
        "outbox": _outbox(store),
        "sending": _sending(cfg, store, now),
        "quarantine": _quarantine(store, since),
        "spam": spam(store),
        "suspicious": _suspicious(store, since, now),
        "spam_reports": store.scalar("SELECT count(*) FROM events WHERE kind = 'spam_report' AND at > ? AND at <= ?",
                                     iso(since), iso(now)),
        "trend": [{"date": moment.astimezone(cfg.tz).date().isoformat(), "levels": levels}
                  for moment, levels in zip(moments, backlog["levels"])],
    }


def _sending(cfg, store: Store, now: datetime) -> dict:
    sending = Outbox(cfg, store).sending_status(now)
    if sending["paused"]:  # times the template shows in the admins' time zone
        sending["paused"] = {**sending["paused"], "since": from_iso(sending["paused"]["since"]),
                             "next_probe": from_iso(sending["paused"]["next_probe"])}
    return sending


# (name, policy.deadlines key, for complaints below this level or any)
DEADLINES = (("24h", "resolution_team", 2), ("48h", "experience_team", 3), ("5d", "target", None))


def _backlog(store: Store, cfg, now: datetime, moments: list[datetime]) -> dict:
    """Complaints open at each of `moments` by level, and those open now by age, opened in the last
    24 h and with a deadline in the next 24 h (a Shortlist of them, soonest first).

    The complaints whose state changes in the 14 days are replayed one by one (history.changing);
    all the others, open at one level since their first contact (history.steady_sql), are counted in
    SQL by first contact, those older than everything the digest tells apart in one count per level."""
    window = {"since": iso(now - TREND_DAYS * DAY), "until": iso(now)}
    day_start = iso(now - DAY)
    levels = [{1: 0, 2: 0, 3: 0} for _ in moments]
    ages = {name: {1: 0, 2: 0, 3: 0} for name, _limit in AGES}
    offsets = {key: due - now for key, due in policy.deadlines(now, cfg).items()}
    out = {"levels": levels, "ages": ages, "open": 0, "open_day": 0}

    def count_open(first_contact: datetime, level: int, n: int, today: bool) -> None:
        age = now - first_contact
        ages[next(name for name, limit in AGES if limit is None or age < limit)][level] += n
        out["open"] += n
        out["open_day"] += n if today else 0

    open_now = []
    for past in history.changing(store, now - TREND_DAYS * DAY, now):
        for counts, moment in zip(levels, moments):
            state = past.at(moment)
            if state and state[0]:
                counts[state[1]] = counts.get(state[1], 0) + 1
        state = past.at(now)
        if state and state[0]:
            open_now.append((past.row, state[1]))
            count_open(from_iso(past.row["first_contact"]), state[1], 1, past.row["first_contact"] > day_start)
    soon = _due_soon(open_now, cfg, now)
    soon_total = len(soon)

    # open at every moment, older than 5 days, no deadline ahead and not opened today
    old = iso(min(moments[0], now - DAY, now - max(limit for _name, limit in AGES if limit),
                  now - max(offsets[key] for _name, key, _below in DEADLINES)))
    steady = history.steady_sql()
    for row in store.conn.execute(
            f"SELECT CASE WHEN first_contact > :old THEN first_contact END AS first_contact, level, count(*) AS n "
            f"FROM ({steady}) GROUP BY 1, 2", {**window, "old": old}):
        level, n = row["level"], row["n"]
        if level is None:  # never open in the window
            continue
        if row["first_contact"] is None:
            for counts in levels:
                counts[level] = counts.get(level, 0) + n
            ages[AGES[-1][0]][level] += n
            out["open"] += n
            continue
        first_contact = from_iso(row["first_contact"])
        for counts, moment in zip(levels, moments):
            if first_contact <= moment:
                counts[level] = counts.get(level, 0) + n
        count_open(first_contact, level, n, row["first_contact"] > day_start)
        for _name, key, below in DEADLINES:
            if (below is None or level < below) and now < first_contact + offsets[key] <= now + DAY:
                soon_total += n
    for name, key, below in DEADLINES:  # the soonest of the steady ones, for each deadline
        rows = store.conn.execute(
            f"SELECT ref, subject, first_contact, level FROM ({steady}) "
            f"WHERE level {'IS NOT NULL' if below is None else '< :below'} "
            "AND first_contact > :after AND first_contact <= :before ORDER BY first_contact, ref LIMIT :limit",
            {**window, "below": below, "after": iso(now - offsets[key]), "before": iso(now + DAY - offsets[key]),
             "limit": LIST_LIMIT})
        soon += [{"deadline": name, "ref": r["ref"], "subject": one_line(r["subject"]), "level": r["level"],
                  "due": from_iso(r["first_contact"]) + offsets[key]} for r in rows]
    order = [name for name, _key, _below in DEADLINES]
    soon.sort(key=lambda d: (d["due"], d["ref"], order.index(d["deadline"])))
    out["due_soon"] = Shortlist(soon[:LIST_LIMIT], soon_total)
    return out


def _missed(store: Store, since: datetime, now: datetime) -> Shortlist:
    """Deadlines the clock found missed in the window: 24 h and 48 h escalations, the 5-day target
    (the first LIST_LIMIT, and how many)."""
    out, total = [], 0
    for ev in store.all("SELECT e.at, e.kind, e.detail, c.ref, c.subject, c.level FROM events e "
                        "JOIN complaints c ON c.id = e.complaint_id "
                        "WHERE e.kind IN ('escalated', 'target_missed') AND e.at > ? AND e.at <= ? "
                        "ORDER BY e.at, e.id", iso(since), iso(now)):
        detail = json.loads(ev["detail"] or "{}")
        if ev["kind"] == "target_missed":
            deadline = "5d"
        elif detail.get("reason") in ("24h", "48h"):
            deadline = detail["reason"]
        else:
            continue  # a staff or dissatisfied-customer escalation is not a missed deadline
        if len(out) < LIST_LIMIT:
            due = detail.get("due")
            out.append({"deadline": deadline, "ref": ev["ref"], "subject": one_line(ev["subject"]),
                        "due": datetime.fromisoformat(due) if due else from_iso(ev["at"]),
                        "at": from_iso(ev["at"])})
        total += 1
    return Shortlist(out, total)


def _due_soon(open_now, cfg, now: datetime) -> list[dict]:
    """Deadlines falling in the next 24 h for complaints open now."""
    out = []
    for row, level in open_now:
        due = policy.deadlines(from_iso(row["first_contact"]), cfg)
        for name, key, below in DEADLINES:
            if (below is None or level < below) and now < due[key] <= now + DAY:
                out.append({"deadline": name, "ref": row["ref"], "subject": one_line(row["subject"]),
                            "level": level, "due": due[key]})
    return sorted(out, key=lambda d: (d["due"], d["ref"]))


def _median(store: Store, pairs: str, *params) -> dict:
    """Median of b - a in seconds over the rows of `pairs` (a SELECT of two stored times, a and b),
    worked out in SQL: the number of rows, then the one or two in the middle. Stored times are whole
    seconds (store.iso), so the differences are exact."""
    n = store.scalar(f"SELECT count(*) FROM ({pairs})", *params)
    if not n:
        return {"seconds": None, "n": 0}
    middle = store.all(f"SELECT CAST(round((julianday(b) - julianday(a)) * 86400) AS INTEGER) AS s FROM ({pairs}) "
                       "ORDER BY s LIMIT ? OFFSET ?", *params, 2 - n % 2, (n - 1) // 2)
    return {"seconds": sum(float(r["s"]) for r in middle) / len(middle), "n": n}  # as statistics.median


def _medians(store: Store, now: datetime) -> dict:
    """Median time from first contact to acknowledgement, first staff answer and resolution,
    over what happened in the last 7 and 30 days."""
    out = {}
    for days in (7, 30):
        since, until = iso(now - timedelta(days=days)), iso(now)
        out.setdefault("ack", {})[days] = _median(
            store, "SELECT first_contact AS a, acked_at AS b FROM complaints WHERE acked_at > ? AND acked_at <= ?",
            since, until)
        # a complaint's first staff answer falls in the window when it has one there and none before
        out.setdefault("first_answer", {})[days] = _median(
            store, "SELECT c.first_contact AS a, min(e.at) AS b FROM events e "
            "JOIN complaints c ON c.id = e.complaint_id "
            "WHERE e.kind IN ('staff_answered', 'staff_asked') AND e.at > ? AND e.at <= ? AND NOT EXISTS ("
            "SELECT 1 FROM events p WHERE p.complaint_id = e.complaint_id AND p.at <= ? "
            "AND p.kind IN ('staff_answered', 'staff_asked')) GROUP BY e.complaint_id", since, until, since)
        out.setdefault("resolution", {})[days] = _median(
            store, "SELECT c.first_contact AS a, e.at AS b FROM events e JOIN complaints c ON c.id = e.complaint_id "
            "WHERE e.kind = 'resolved' AND e.at > ? AND e.at <= ?", since, until)
    return out


def _ratings(store: Store, cfg, since: datetime, now: datetime) -> dict:
    recent = [{"ref": r["ref"], "rating": r["rating"], "subject": one_line(r["subject"]),
               "at": from_iso(r["rated_at"]), "low": r["rating"] <= cfg.policy.low_rating}
              for r in store.all("SELECT ref, subject, rating, rated_at FROM complaints "
                                 "WHERE rating IS NOT NULL AND rated_at > ? AND rated_at <= ? "
                                 "ORDER BY rated_at", iso(since), iso(now))]
    average = {}
    for days in (1, 7, 30):
        row = store.one("SELECT avg(rating) AS avg, count(*) AS n FROM complaints "
                        "WHERE rating IS NOT NULL AND rated_at > ? AND rated_at <= ?",
                        iso(now - timedelta(days=days)), iso(now))
        average[days] = {"average": round(row["avg"], 2) if row["avg"] is not None else None, "n": row["n"]}
    return {"recent": recent, "average": average}


def _table_exists(store: Store, name: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name))


def _sellers(store: Store) -> list[dict] | None:
    """Sellers flagged and awaiting an admin decision (P13); None without the sellers tables."""
    if not _table_exists(store, "sellers"):
        return None
    strikes = ("(SELECT count(*) FROM seller_strikes k WHERE k.seller_id = s.id "
               "AND k.at > COALESCE(s.strikes_cleared_at, ''))" if _table_exists(store, "seller_strikes") else "NULL")
    rows = store.all(f"SELECT s.id, s.shop_name, s.status_reason, s.status_at, {strikes} AS strikes "
                     "FROM sellers s WHERE s.status = 'flagged' ORDER BY s.status_at, s.id LIMIT ?", LIST_LIMIT)
    return [{"id": r["id"], "shop": r["shop_name"], "reason": one_line(r["status_reason"], 80),
             "since": from_iso(r["status_at"]), "strikes": r["strikes"]} for r in rows]


def _outbox(store: Store) -> dict:
    def rows(where: str) -> list[dict]:
        return [{"id": r["id"], "kind": r["kind"], "to": ", ".join(json.loads(r["rcpt"])),
                 "subject": one_line(r["subject"], 60), "attempts": r["attempts"],
                 "error": one_line(r["last_error"], 110), "ref": r["ref"]}
                for r in store.all("SELECT o.id, o.kind, o.rcpt, o.subject, o.attempts, o.last_error, c.ref "
                                   "FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id "
                                   f"WHERE {where} ORDER BY o.id DESC LIMIT ?", LIST_LIMIT)]
    return {"failed": rows("o.status = 'failed'"),
            "failed_count": store.scalar("SELECT count(*) FROM outbox WHERE status = 'failed'"),
            "retrying": rows("o.status = 'queued' AND o.attempts > 0"),
            "retrying_count": store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued' AND attempts > 0")}


def _quarantine(store: Store, since: datetime) -> dict:
    held = [{"id": r["id"], "at": from_iso(r["at"]), "sender": r["sender"] or "?",
             "subject": one_line(r["subject"], 60), "reason": one_line(r["reason"], 80)}
            for r in store.all("SELECT * FROM quarantine WHERE status = 'held' ORDER BY at DESC LIMIT ?",
                               LIST_LIMIT)]
    return {"held": held,
            "held_count": store.scalar("SELECT count(*) FROM quarantine WHERE status = 'held'"),
            "new": store.scalar("SELECT count(*) FROM quarantine WHERE at > ?", iso(since))}


def spam(store: Store, listed: int = 20) -> dict:
    """What the last pass found in the spam folder and left there (nothing in it is answered):
    how many, since when, and the newest senders and subjects."""
    saved = json.loads(store.get_state("junk") or "{}")
    items = sorted(saved.get("items", {}).values(), key=lambda i: i["at"], reverse=True)
    return {"folder": saved.get("folder"), "count": len(items),
            "oldest": from_iso(items[-1]["at"]) if items else None,
            "listed": [{**i, "at": from_iso(i["at"])} for i in items[:listed]]}


def _suspicious(store: Store, since: datetime, now: datetime) -> list[dict]:
    out = []
    for ev in store.all("SELECT e.at, e.actor, e.detail, c.ref FROM events e "
                        "LEFT JOIN complaints c ON c.id = e.complaint_id "
                        "WHERE e.kind = 'suspicious' AND e.at > ? AND e.at <= ? ORDER BY e.at LIMIT ?",
                        iso(since), iso(now), LIST_LIMIT):
        detail = json.loads(ev["detail"] or "{}")
        out.append({"at": from_iso(ev["at"]), "claimed": ev["actor"], "why": one_line(detail.get("why"), 80),
                    "ref": ev["ref"], "subject": one_line(detail.get("subject"), 60)})
    return out


# --- presenting ---------------------------------------------------------------

def duration(seconds: float | None, lang: str = "fr") -> str:
    """42 min, 5 h 07, 2 j 04 h: short enough for a table cell."""
    if seconds is None:
        return "—"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} {'j' if lang == 'fr' else 'd'} {hours:02d} h"


def bar_widths(levels: dict[int, int], biggest: int, width: int, least: int = 1) -> dict[int, int]:
    """Widths of a stacked bar's parts; a level with anything in it stays visible."""
    return {level: max(least, round(n / biggest * width)) if n else 0 for level, n in levels.items()}


def context(doc: dict, cfg, lang: str) -> dict:
    """What the digest templates see: the numbers plus a few helpers."""
    biggest = max([sum(day["levels"].values()) for day in doc["trend"]] + [1])
    trend = [{**day, "day": date.fromisoformat(day["date"]), "total": sum(day["levels"].values()),
              "px": bar_widths(day["levels"], biggest, 300, least=3), "chars": bar_widths(day["levels"], biggest, 30)}
             for day in doc["trend"]]
    return {"d": doc, "day": date.fromisoformat(doc["date"]), "trend": trend,
            "duration": lambda s: duration(s, lang), "low_rating": cfg.policy.low_rating,
            "missed_count": len(doc["missed"]), "zone": timefmt.zone(doc["now"], cfg.tz)}


def render(templates, cfg, doc: dict, lang: str | None = None):
    lang = lang or cfg.policy.language
    return templates.render("digest", lang, now=doc["now"], cfg=cfg, **context(doc, cfg, lang))


def queue(workflow, cfg, now: datetime) -> str | None:
    """Queue the digest as of `now` for `[digest] to`; returns its Message-ID. Call inside a transaction."""
    to = recipients(cfg)
    if not to:
        log_event("digest_skipped", severity=30, reason="no recipients: set [digest] to or [teams] admins")
        return None
    doc = build(workflow.store, cfg, now)
    mail = policy.Mail("digest", to, "digest", "admin", routine=True,
                       context=context(doc, cfg, cfg.policy.language))
    message_id = workflow.queue(None, mail, now)
    log_event("digest_queued", date=doc["date"], to=len(to), open=doc["counts"]["open"]["total"],
              missed=len(doc["missed"]))
    return message_id


class DigestJob:
    """Clock job (App.clock_jobs): today's digest, once, after `send_at` local time."""

    def __init__(self, app):
        self.app = app
        self.broken_on: str | None = None  # a digest that cannot be built is logged once a day, not every tick

    def __call__(self, now: datetime) -> bool:
        cfg, store = self.app.cfg, self.app.store
        if not cfg.digest.enabled:
            return False
        local = now.astimezone(cfg.tz)
        if local.time() < send_time(cfg):
            return False
        today = local.date().isoformat()
        if today == self.broken_on or store.get_state(STATE_KEY) == today:
            return False
        try:
            with store.transaction():  # re-read under the write lock: one digest even with a CLI beside us
                if store.get_state(STATE_KEY) == today:
                    return False
                queue(self.app.workflow, cfg, now)
                store.set_state(STATE_KEY, today)
        except sqlite3.OperationalError:
            raise  # the database is busy or unwell: the daemon backs off, the next tick tries again
        except Exception:  # a template or data problem must not stop the helpdesk
            self.broken_on = today
            log_event("digest_failed", severity=logging.ERROR, exc_info=True, date=today)
            return False
        return True
