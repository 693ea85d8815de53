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
from datetime import date, datetime, time, timedelta, timezone

from maildesk.core import deadlines, policy, timefmt
from maildesk.logs import event as log_event
from maildesk.adapters.outbox import Outbox
from maildesk.service import retention
from maildesk.store import categories as category_counts, history, reports
from maildesk.store.db import Store, StoreUnwell, from_iso

STATE_KEY = "digest_last_sent"
TREND_DAYS = 14
LIST_LIMIT = 25
DAY = timedelta(days=1)
AGES = (("lt24h", timedelta(hours=24)), ("24to48h", timedelta(hours=48)),
        ("2to5d", timedelta(days=5)), ("gt5d", None))


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
    opened_total = reports.opened_count(store, now)
    counts = {
        "opened": {"day": reports.opened_count(store, now, since), "total": opened_total},
        "resolved": {"day": reports.resolved_count(store, since, now), "total": opened_total - backlog["open"]},
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
        "categories": _categories(store, now),
        "ratings": _ratings(store, cfg, since, now),
        "sellers": _sellers(store),
        "outbox": _outbox(store),
        "sending": _sending(cfg, store, now),
        "quarantine": _quarantine(store, since),
        "spam": spam(store),
        "suspicious": _suspicious(store, since, now),
        "spam_reports": reports.event_count(store, "spam_report", since, now),
        "retention": retention.summary(store, cfg, now),  # anonymised by the clock in 24 h, the next batch
        "trend": [{"date": moment.astimezone(cfg.tz).date().isoformat(), "levels": levels}
                  for moment, levels in zip(moments, backlog["levels"])],
    }


def _sending(cfg, store: Store, now: datetime) -> dict:
    sending = Outbox(cfg, store).sending_status(now)
    if sending["paused"]:  # times the template shows in the admins' time zone
        sending["paused"] = {**sending["paused"], "since": from_iso(sending["paused"]["since"]),
                             "next_probe": from_iso(sending["paused"]["next_probe"])}
    return sending


def _backlog(store: Store, cfg, now: datetime, moments: list[datetime]) -> dict:
    """Complaints open at each of `moments` by level, and those open now by age, opened in the last
    24 h and with a deadline in the next 24 h (a Shortlist of them, soonest first).

    The complaints whose state changes in the 14 days are replayed one by one (history.changing);
    all the others, open at one level since their first contact, are counted in SQL by first
    contact (history.steady_groups), those older than everything the digest tells apart in one
    count per level."""
    window_start = now - TREND_DAYS * DAY
    day_start = now - DAY
    levels = [{1: 0, 2: 0, 3: 0} for _ in moments]
    ages = {name: {1: 0, 2: 0, 3: 0} for name, _limit in AGES}
    offsets = deadlines.offsets(cfg)
    out = {"levels": levels, "ages": ages, "open": 0, "open_day": 0}

    def count_open(first_contact: datetime, level: int, n: int) -> None:
        age = now - first_contact
        ages[next(name for name, limit in AGES if limit is None or age < limit)][level] += n
        out["open"] += n
        out["open_day"] += n if first_contact > day_start else 0

    open_now = []
    for past in history.changing(store, window_start, now):
        for counts, moment in zip(levels, moments):
            state = past.at(moment)
            if state and state[0]:
                counts[state[1]] = counts.get(state[1], 0) + 1
        state = past.at(now)
        if state and state[0]:
            open_now.append((past.row, state[1]))
            count_open(from_iso(past.row["first_contact"]), state[1], 1)
    soon = due_soon(open_now, cfg, now)
    soon_total = len(soon)

    # open at every moment, older than 5 days, no deadline ahead and not opened today
    old = min(moments[0], day_start, now - max(limit for _name, limit in AGES if limit), now - max(offsets.values()))
    for group in history.steady_groups(store, window_start, now, old):
        level, n = group.level, group.n
        if level is None:  # never open in the window
            continue
        if group.first_contact is None:
            for counts in levels:
                counts[level] = counts.get(level, 0) + n
            ages[AGES[-1][0]][level] += n
            out["open"] += n
            continue
        for counts, moment in zip(levels, moments):
            if group.first_contact <= moment:
                counts[level] = counts.get(level, 0) + n
        count_open(group.first_contact, level, n)
        for name, offset in offsets.items():
            if deadlines.applies(name, level) and now < group.first_contact + offset <= now + DAY:
                soon_total += n
    for name, _key, below in deadlines.CLOCK:  # the soonest of the steady ones, for each deadline
        offset = offsets[name]
        soon += [{"deadline": name, "ref": c.ref, "subject": one_line(c.subject), "level": c.level,
                  "due": c.first_contact + offset}
                 for c in history.steady_soonest(store, window_start, now, below, now - offset,
                                                 now + DAY - offset, LIST_LIMIT)]
    order = [name for name, _key, _below in deadlines.CLOCK]
    soon.sort(key=lambda d: (d["due"], d["ref"], order.index(d["deadline"])))
    out["due_soon"] = Shortlist(soon[:LIST_LIMIT], soon_total)
    return out


def due_soon(open_now, cfg, now: datetime) -> list[dict]:
    """Deadlines falling in the next 24 h for complaints open now: (complaint row, level) pairs."""
    out = []
    for row, level in open_now:
        for d in deadlines.falling_due(from_iso(row["first_contact"]), level, now, DAY, cfg):
            out.append({"deadline": d.name, "ref": row["ref"], "subject": one_line(row["subject"]),
                        "level": level, "due": d.due})
    return sorted(out, key=lambda d: (d["due"], d["ref"]))


def _missed(store: Store, since: datetime, now: datetime) -> Shortlist:
    """Deadlines the clock found missed in the window: 24 h and 48 h escalations, the 5-day target
    (the first LIST_LIMIT, and how many)."""
    out, total = [], 0
    for ev in reports.events_between(store, ("escalated", "target_missed"), since, now):
        if ev.ref is None:
            continue  # not about a complaint
        if ev.kind == "target_missed":
            deadline = "5d"
        elif ev.detail.get("reason") in ("24h", "48h"):
            deadline = ev.detail["reason"]
        else:
            continue  # a staff or dissatisfied-customer escalation is not a missed deadline
        if len(out) < LIST_LIMIT:
            due = ev.detail.get("due")
            out.append({"deadline": deadline, "ref": ev.ref, "subject": one_line(ev.subject),
                        "due": datetime.fromisoformat(due) if due else ev.at, "at": ev.at})
        total += 1
    return Shortlist(out, total)


def _medians(store: Store, now: datetime) -> dict:
    """Median time from first contact to acknowledgement, first staff answer and resolution,
    over what happened in the last 7 and 30 days."""
    out = {"ack": {}, "first_answer": {}, "resolution": {}}
    for days in (7, 30):
        since = now - timedelta(days=days)
        out["ack"][days] = reports.median_to_ack(store, since, now)
        out["first_answer"][days] = reports.median_to_first_answer(store, since, now)
        out["resolution"][days] = reports.median_to_resolution(store, since, now)
    return out


def _categories(store: Store, now: datetime) -> dict:
    """Complaints first contacted in the last 7 and 30 days, by category and by seller and
    category (the LIST_LIMIT biggest over 30 days): which kind of trouble, and who causes it."""
    week, month = (now - timedelta(days=7), now), (now - timedelta(days=30), now)
    cats_7, cats_30 = category_counts.by_category(store, *week), category_counts.by_category(store, *month)
    sellers_7, sellers_30 = category_counts.by_seller(store, *week), category_counts.by_seller(store, *month)
    by_category = [{"category": name, "d7": cats_7.get(name, 0), "d30": n} for name, n in cats_30.items()]
    by_seller = [{"seller": seller, "category": name, "d7": sellers_7.get((seller, name), 0), "d30": n}
                 for (seller, name), n in sellers_30.items()]
    by_category.sort(key=lambda r: (-r["d30"], -r["d7"], r["category"]))
    by_seller.sort(key=lambda r: (-r["d30"], -r["d7"], r["seller"], r["category"]))
    return {"by_category": by_category, "by_seller": Shortlist(by_seller[:LIST_LIMIT], len(by_seller))}


def _ratings(store: Store, cfg, since: datetime, now: datetime) -> dict:
    recent = [{"ref": r["ref"], "rating": r["rating"], "subject": one_line(r["subject"]),
               "at": r["rated_at"], "low": r["rating"] <= cfg.policy.low_rating}
              for r in reports.ratings_between(store, since, now)]
    average = {}
    for days in (1, 7, 30):
        mean, n = reports.average_rating(store, now - timedelta(days=days), now)
        average[days] = {"average": round(mean, 2) if mean is not None else None, "n": n}
    return {"recent": recent, "average": average}


def _sellers(store: Store) -> list[dict] | None:
    """Sellers flagged and awaiting an admin decision (P13); None without the sellers tables."""
    rows = reports.flagged_sellers(store, LIST_LIMIT)
    if rows is None:
        return None
    return [{"id": r["id"], "shop": r["shop_name"], "reason": one_line(r["status_reason"], 80),
             "since": r["status_at"], "strikes": r["strikes"]} for r in rows]


def _outbox(store: Store) -> dict:
    def rows(which: str) -> list[dict]:
        return [{"id": r["id"], "kind": r["kind"], "to": ", ".join(r["to"]),
                 "subject": one_line(r["subject"], 60), "attempts": r["attempts"],
                 "error": one_line(r["last_error"], 110), "ref": r["ref"]}
                for r in reports.outbox_rows(store, which, newest_first=True, limit=LIST_LIMIT)]
    counts = reports.outbox_counts(store)
    return {"failed": rows("failed"), "failed_count": counts["failed"],
            "retrying": rows("retrying"), "retrying_count": counts["retrying"]}


def _quarantine(store: Store, since: datetime) -> dict:
    held = [{"id": r["id"], "at": r["at"], "sender": r["sender"] or "?",
             "subject": one_line(r["subject"], 60), "reason": one_line(r["reason"], 80)}
            for r in reports.held(store, LIST_LIMIT)]
    return {"held": held, "held_count": reports.held_count(store), "new": reports.quarantined_since(store, since)}


def spam(store: Store, listed: int = 20) -> dict:
    """What the last pass found in the spam folder and left there (nothing in it is answered):
    how many, since when, and the newest senders and subjects."""
    saved = json.loads(store.get_state("junk") or "{}")
    items = sorted(saved.get("items", {}).values(), key=lambda i: i["at"], reverse=True)
    return {"folder": saved.get("folder"), "count": len(items),
            "oldest": from_iso(items[-1]["at"]) if items else None,
            "listed": [{**i, "at": from_iso(i["at"])} for i in items[:listed]]}


def _suspicious(store: Store, since: datetime, now: datetime) -> list[dict]:
    return [{"at": ev.at, "claimed": ev.actor, "why": one_line(ev.detail.get("why"), 80),
             "ref": ev.ref, "subject": one_line(ev.detail.get("subject"), 60)}
            for ev in reports.events_between(store, ("suspicious",), since, now, LIST_LIMIT)]


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
        except StoreUnwell:
            raise  # the database is busy or unwell: the daemon backs off, the next tick tries again
        except Exception:  # a template or data problem must not stop the helpdesk
            self.broken_on = today
            log_event("digest_failed", severity=logging.ERROR, exc_info=True, date=today)
            return False
        return True
