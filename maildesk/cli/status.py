"""`maildesk status`: a health check for people and monitoring, from what the daemon recorded
and a quick login to each server."""
from __future__ import annotations

import json
import os
from datetime import datetime

from maildesk.adapters import oauth2, probe
from maildesk.adapters.outbox import Outbox
from maildesk.cli.check import read_secrets
from maildesk.cli.common import ago, local, print_json
from maildesk.cli.display import shown
from maildesk.core import deadlines
from maildesk.clock import utcnow
from maildesk.lock import InstanceLock
from maildesk.store.inbox import UNFETCHABLE_TRIES
from maildesk.service import digest
from maildesk.store import reports
from maildesk.store.db import DatabaseReadOnly, SchemaError, Store, StoreUnreachable, from_iso
from maildesk.store.opening import open_store

QUICK = 5  # seconds: `status` must answer fast even when a server does not
DEFAULT_MAX_AGE = 600  # seconds: the daemon polls at least every minute, IDLE or not
HEALTHY, DEGRADED, DOWN = 0, 1, 2  # `status` exit codes, for monitoring


def add_parser(sub) -> None:
    st = sub.add_parser("status", help="health check: exit 0 healthy, 1 degraded, 2 down or misconfigured")
    st.add_argument("--no-connect", action="store_true", help="skip the IMAP and SMTP checks")
    st.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE, metavar="SECONDS",
                    help=f"degraded when the daemon's last successful poll is older (default {DEFAULT_MAX_AGE})")
    st.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")


def upcoming(store: Store, cfg, now: datetime, limit: int = 5) -> list[dict]:
    """The next policy deadlines of open complaints, soonest first."""
    out = []
    for c in reports.open_oldest_first(store, 2000):
        d = deadlines.applying(c["first_contact"], c["level"], now, cfg)
        if d is not None:
            out.append({"deadline": d.name, "due": d.due, "ref": c["ref"], "level": c["level"],
                        "subject": digest.one_line(c["subject"], 50)})
    return sorted(out, key=lambda d: d["due"])[:limit]


def status(cfg, args, env=os.environ) -> int:
    """A health check for people and monitoring. Exit 0 healthy; 1 degraded (the last
    successful poll is older than --max-age, or a server check failed); 2 down (no daemon
    running) or misconfigured (no database, wrong schema). Needs no secrets: a server
    check whose secret is not in this environment is skipped, not failed."""
    now = utcnow()
    try:
        store = open_store(cfg, env, readonly=True, wait=QUICK)
    except (SchemaError, DatabaseReadOnly, StoreUnreachable) as e:
        return _report_down(args, str(e))
    try:
        last_poll = from_iso(store.get_state("last_poll"))
        levels = reports.open_by_level(store)
        doc = {
            "daemon": daemon_state(store, cfg),
            "last_poll": last_poll,
            "last_poll_seconds_ago": round((now - last_poll).total_seconds()) if last_poll else None,
            "outbox": {**reports.outbox_counts(store), **Outbox(cfg, store).sending_status(now)},
            "open": {"1": levels.get(1, 0), "2": levels.get(2, 0), "3": levels.get(3, 0),
                     "total": sum(levels.values())},
            "next_deadlines": upcoming(store, cfg, now),
            "quarantine_held": reports.held_count(store),
            "digest_last_sent": store.get_state(digest.STATE_KEY),
            **mailbox_state(store),
            "oauth2_token_dead": oauth2.dead_token(cfg),
        }
    finally:
        store.close()
    problems = []
    if not args.no_connect:
        secrets, errors = read_secrets(cfg, env)
        imap = (_skipped("imap", errors["imap"]) if "imap" in errors else
                probe.imap(cfg.mailbox, secrets["imap"], secrets["token"], QUICK, folders=False)[0])
        smtp = (_skipped("smtp", errors["smtp"]) if "smtp" in errors else
                probe.smtp(cfg, secrets["smtp"], secrets["token"], QUICK))
        doc["mailbox"], doc["smtp"] = imap.as_dict(), smtp.as_dict()
        problems += [f"{r.name} check failed" for r in (imap, smtp) if not r.ok]
    if doc["loop_trouble"]:
        problems.append("the main loop keeps failing (see loop_trouble)")
    if doc["oauth2_token_dead"]:
        problems.append("the OAuth2 refresh token is dead: run `maildesk auth gmail` again")
    if doc["outbox"]["paused"]:
        problems.append(f"sending paused by Gmail's daily limit since "
                        f"{local(from_iso(doc['outbox']['paused']['since']), cfg.tz)}")
    if not doc["daemon"]["running"]:
        state = DOWN
        problems.insert(0, "the daemon is not running")
    else:
        age = doc["last_poll_seconds_ago"]
        if age is None or age > args.max_age:
            problems.insert(0, f"last successful poll {'never' if age is None else ago(age)} "
                               f"(--max-age {args.max_age} s)")
        state = DEGRADED if problems else HEALTHY
    doc["health"] = {"state": ("healthy", "degraded", "down")[state], "exit": state, "problems": problems}
    if args.json:
        print_json(doc)
    else:
        print(format_status(doc, cfg))
    return state


def daemon_state(store: Store, cfg) -> dict:
    """Who runs: on SQLite the lock's holder; on PostgreSQL the active daemon and its standbys."""
    if store.kind != "postgresql":
        pid = InstanceLock(cfg.database_path).held_elsewhere()
        return {"running": pid is not None, "pid": pid}
    from maildesk.store.leader import daemons
    found = daemons(store, cfg.storage.takeover_seconds)
    active = found["active"] or {}
    return {"running": bool(active), "pid": active.get("pid"), "host": active.get("host"),
            "since": active.get("since"), "standbys": found["standbys"]}


def _skipped(name: str, error: str) -> probe.Result:
    """No secret here (a monitoring user): the daemon's last poll says whether it connects."""
    return probe.Result(f"{name} login", True, f"not checked: {error}")


def _report_down(args, why: str) -> int:
    if args.json:
        print_json({"health": {"state": "down", "exit": DOWN, "problems": [why]}})
    else:
        print(f"health      down: {why}")
    return DOWN


def mailbox_state(store: Store) -> dict:
    """What the daemon recorded about the mailbox: logins, a failing loop, messages left alone."""
    logins = json.loads(store.get_state("imap_logins") or "{}")
    unfetchable = []
    for value in reports.states_like(store, "unfetchable:"):
        unfetchable += [{"uid": int(uid), **entry} for uid, entry in json.loads(value or "{}").items()]
    left = [json.loads(v) for v in reports.states_like(store, "first_start:")]
    return {"imap_logins": {"today": logins.get("today", 0) if logins.get("day") == utcnow().date().isoformat()
                            else 0, "total": logins.get("total", 0), "last": logins.get("last")},
            "loop_trouble": json.loads(store.get_state("loop_trouble") or "null"),
            "unfetchable": unfetchable,
            "first_start_left": sum(d.get("count", 0) for d in left)}


def format_status(doc: dict, cfg) -> str:
    tz = cfg.tz
    d = doc["daemon"]
    h = doc["health"]
    lines = [f"health      {h['state']}" + (f": {'; '.join(h['problems'])}" if h["problems"] else ""),
             f"daemon      {'running (pid ' + str(d['pid']) + ')' if d['running'] else 'not running'}"]
    if "standbys" in d:  # PostgreSQL: one active daemon, any number standing by
        if d["running"]:
            lines[-1] = f"daemon      active: {d['host']} pid {d['pid']} since {local(from_iso(d['since']), tz)}"
        lines += [f"standby     {s['host']} pid {s['pid']}, last seen {local(from_iso(s['seen']), tz)}"
                  for s in d["standbys"]] or ["standby     none"]
    for key, label in (("mailbox", "mailbox"), ("smtp", "smtp")):
        if key in doc:
            r = doc[key]
            lines.append(f"{label:<11} {'ok' if r['ok'] else 'FAIL'}  {r['detail']}")
            if r["hint"]:
                lines.append(f"{'':13}hint: {r['hint']}")
    if doc["last_poll"]:
        lines.append(f"last poll   {local(doc['last_poll'], tz)} ({ago(doc['last_poll_seconds_ago'])})")
    else:
        lines.append("last poll   never")
    o = doc["outbox"]
    sent = f"{o['sent_last_24h']}/{o['limit']}" if o["limit"] else f"{o['sent_last_24h']}"
    elsewhere = f" ({o['sent_elsewhere']} by staff from the mailbox itself)" if o["sent_elsewhere"] else ""
    lines.append(f"outbox      {o['queued']} queued ({o['retrying']} retrying), {o['failed']} failed, "
                 f"{sent} recipients in 24 h{elsewhere}"
                 + (f", {o['held']} held {'by the pause' if o['paused'] else 'by the daily limit'}" if o["held"] else ""))
    if o["paused"]:
        p = o["paused"]
        lines.append(f"PAUSED      all sending since {local(from_iso(p['since']), tz)}: Gmail's daily limit "
                     f"({p['error']}); next try {local(from_iso(p['next_probe']), tz)} (one mail an hour "
                     "until Gmail takes mail again, at most about 24 h)")
    op = doc["open"]
    lines.append(f"open        {op['total']}: level 1 {op['1']}, level 2 {op['2']}, level 3 {op['3']}")
    lines.append(f"quarantine  {doc['quarantine_held']} held")
    logins = doc["imap_logins"]
    lines.append(f"imap logins {logins['today']} today, {logins['total']} in all"
                 + (f", last {local(from_iso(logins['last']), tz)}" if logins["last"] else ""))
    if doc["oauth2_token_dead"]:
        lines.append(f"TROUBLE     {doc['oauth2_token_dead']}")
    if doc["loop_trouble"]:
        t = doc["loop_trouble"]
        lines.append(f"TROUBLE     the main loop keeps failing since {local(from_iso(t['since']), tz)}: {t['error']}")
    skipped = [u for u in doc["unfetchable"] if u["tries"] >= UNFETCHABLE_TRIES]
    if skipped:
        lines.append(f"unfetchable {len(skipped)} message(s) the server will not serve, left in the inbox: "
                     + ", ".join(f"UID {u['uid']} ({u['subject'] or 'no subject'})" for u in skipped[:5]))
    if doc["first_start_left"]:
        lines.append(f"first start {doc['first_start_left']} older message(s) left unanswered in the inbox "
                     "(maildesk backfill --since DATE keeps them as history)")
    lines.append(f"digest      last sent {doc['digest_last_sent'] or 'never'}")
    lines.append("next deadlines" + ("" if doc["next_deadlines"] else "  none"))
    for n in doc["next_deadlines"]:
        lines.append(f"  {local(n['due'], tz)}  {n['deadline']:<4} {n['ref']}  L{n['level']}  {n['subject']}")
    return "\n".join(shown(line) for line in lines)
