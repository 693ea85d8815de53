"""The admin commands: status, check, init, digest, outbox, quarantine.

cli.py only parses; the work is here so the command line stays thin. Each
command prints lines a person reads, or `--json` a script parses, and
exits 0 when all is well, 1 when something needs attention, 2 for bad
config or usage. Loops over many items show a progress bar on a terminal
and stay quiet in a pipe.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import date, datetime
from pathlib import Path

from tqdm import tqdm

from . import digest, policy, probe, quarantine
from .config import ConfigError, read_secret
from .store import Store, from_iso
from .templates import shipped
from .daemon import utcnow

SHIPPED_CONFIG = shipped("maildesk.toml")  # the commented starter config `init` writes
QUICK = 5  # seconds: `status` must answer fast even when a server does not



def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def print_json(doc) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, default=_plain))


def _local(value: datetime | None, tz, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt) if value else "-"


def _ago(seconds: float) -> str:
    return digest.duration(max(seconds, 0), "en") + " ago"


def progress(items, what: str):
    """A bar on a terminal, nothing in a pipe or a log."""
    return tqdm(items, desc=what, unit="", disable=not sys.stderr.isatty(), leave=False)


# --- parsers ----------------------------------------------------------------

def add_parsers(sub) -> None:
    st = sub.add_parser("status", help="is the daemon running, are IMAP and SMTP reachable, what waits")
    st.add_argument("--no-connect", action="store_true", help="skip the IMAP and SMTP checks")
    st.add_argument("--json", action="store_true")

    ck = sub.add_parser("check", help="validate the config, try IMAP login, folders and SMTP login")
    ck.add_argument("--json", action="store_true")
    ck.add_argument("--timeout", type=float, default=10, help="seconds per connection (default 10)")

    it = sub.add_parser("init", help="write a commented starter config where --config points")
    it.add_argument("--force", action="store_true", help="overwrite an existing file")

    dg = sub.add_parser("digest", help="the admins' daily digest: print it (default) or send it now")
    what = dg.add_mutually_exclusive_group()
    what.add_argument("--print", action="store_true", help="print the text version (default)")
    what.add_argument("--send", action="store_true", help="queue it for [digest] to and send it now")
    dg.add_argument("--date", help="the digest as of send_at that day (YYYY-MM-DD, local time)")
    dg.add_argument("--html", action="store_true", help="print the HTML version instead")
    dg.add_argument("--json", action="store_true", help="print the numbers as JSON")

    ob = sub.add_parser("outbox", help="mail waiting or failed; retry it")
    ob.add_argument("--failed", action="store_true", help="only mail that failed for good")
    again = ob.add_mutually_exclusive_group()
    again.add_argument("--retry", type=int, metavar="ID", help="put this mail back in line and send it now")
    again.add_argument("--all", action="store_true", help="retry every failed or waiting mail now")
    ob.add_argument("--json", action="store_true")

    qu = sub.add_parser("quarantine", help="messages maildesk could not handle: list, or retry")
    qu.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    qu.add_argument("uids", nargs="*", type=int, metavar="UID", help="UIDs in the quarantine folder (from list)")
    qu.add_argument("--all", action="store_true", help="retry every message in the quarantine folder")
    qu.add_argument("--json", action="store_true")


# --- init -------------------------------------------------------------------

def init(args) -> int:
    """Copy the shipped, commented maildesk.toml to --config; never overwrite unasked."""
    target = Path(args.config)
    if target.exists() and not args.force:
        print(f"maildesk: {target} exists; use --force to overwrite it", file=sys.stderr)
        return 1
    if target.resolve() == SHIPPED_CONFIG:
        print(f"{target} is the shipped example itself; nothing to do")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_CONFIG, target)
    print(f"wrote {target}\nnext: edit it, export the passwords it names (password_env), then run:\n"
          f"  maildesk --config {target} check")
    return 0


# --- check ------------------------------------------------------------------

def _secrets(cfg, env):
    """(imap password, smtp password, token source), or the config error for each that failed."""
    from . import oauth2
    out, errors = {}, {}
    for name, section, sec in (("imap", "mailbox", cfg.mailbox), ("smtp", "smtp", cfg.smtp)):
        try:
            out[name] = read_secret(section, sec, env)
        except ConfigError as e:
            errors[name] = str(e)
    try:
        out["token"] = oauth2.token_source(cfg, env)
    except ConfigError as e:
        errors["imap"] = errors["smtp"] = str(e)
        out["token"] = None
    return out, errors


def _secret_failure(name: str, error: str) -> probe.Result:
    return probe.Result(f"{name} login", False, error,
                        "export the variable before running maildesk (systemd: EnvironmentFile=), "
                        "or use password_file")


def _database(cfg) -> probe.Result:
    path = cfg.database_path
    if path.exists():
        return probe.Result("database", True, f"{path}")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and os.access(parent, os.W_OK):
        return probe.Result("database", True, f"{path} (created on the first run)")
    return probe.Result("database", False, f"{path} cannot be created", "fix storage.database or the folder's rights")


def _templates(cfg) -> list[probe.Result]:
    """Every template rendered once (template_check): one line, or one FAIL line per broken file."""
    from .template_check import count, problems
    from .templates import Templates
    templates = Templates(cfg.templates_dir, cfg.policy.language, cfg.tz)
    found = problems(templates, cfg)
    if not found:
        where = f"; {cfg.templates_dir} over the shipped ones" if cfg.templates_dir else ""
        return [probe.Result("templates", True, f"{count()} rendered{where}")]
    hint = ("fix the file, or remove it from templates.dir to use the shipped one" if cfg.templates_dir
            else "the package's templates are missing: reinstall maildesk")
    return [probe.Result("templates", False, line, hint) for line in found]


def check(cfg, args, env=os.environ) -> int:
    results = [probe.Result("config", True, f"{cfg.path} ({len(cfg.staff)} staff, {cfg.policy.timezone})"),
               _database(cfg)]
    secrets, errors = _secrets(cfg, env)
    if "imap" in errors:
        results.append(_secret_failure("imap", errors["imap"]))
    else:
        results += probe.imap(cfg.mailbox, secrets["imap"], secrets["token"], args.timeout)
    if "smtp" in errors:
        results.append(_secret_failure("smtp", errors["smtp"]))
    else:
        results.append(probe.smtp(cfg.smtp, secrets["smtp"], secrets["token"], args.timeout))
    results += _templates(cfg)
    ok = all(r.ok for r in results)
    if args.json:
        print_json({"ok": ok, "checks": [r.as_dict() for r in results]})
    else:
        for r in results:
            print(f"{'ok' if r.ok else 'FAIL':<5} {r.name:<12} {r.detail}")
            if r.hint:
                print(f"{'':18}hint: {r.hint}")
        print("all good" if ok else "something needs fixing (see FAIL above)")
    if any(r.name == "templates" and not r.ok for r in results):
        return 2  # as `run` and `once` do: they would not start
    return 0 if ok else 1


# --- status -----------------------------------------------------------------

def upcoming(store: Store, cfg, now: datetime, limit: int = 5) -> list[dict]:
    """The next policy deadlines of open complaints, soonest first."""
    rows = store.all("SELECT * FROM complaints WHERE status IN ('open', 'waiting_customer') "
                     "ORDER BY first_contact LIMIT 2000")
    out = []
    for row in rows:
        due = policy.deadlines(from_iso(row["first_contact"]), cfg)
        for name, key, applies in (("24h", "resolution_team", row["level"] < 2),
                                   ("48h", "experience_team", row["level"] < 3), ("5d", "target", True)):
            if applies and due[key] > now:
                out.append({"deadline": name, "due": due[key], "ref": row["ref"], "level": row["level"],
                            "subject": digest.one_line(row["subject"], 50)})
                break
    return sorted(out, key=lambda d: d["due"])[:limit]


def status(cfg, args, env=os.environ) -> int:
    from .daemon import InstanceLock
    from .outbox import Outbox
    now = utcnow()
    store = Store(cfg.database_path)
    try:
        pid = InstanceLock(cfg.database_path).held_elsewhere()
        last_poll = from_iso(store.get_state("last_poll"))
        levels = dict(store.all("SELECT level, count(*) FROM complaints "
                                "WHERE status IN ('open', 'waiting_customer') GROUP BY level"))
        doc = {
            "daemon": {"running": pid is not None, "pid": pid},
            "last_poll": last_poll,
            "last_poll_seconds_ago": round((now - last_poll).total_seconds()) if last_poll else None,
            "outbox": {"queued": store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued'"),
                       "retrying": store.scalar("SELECT count(*) FROM outbox WHERE status = 'queued' "
                                                "AND attempts > 0"),
                       "failed": store.scalar("SELECT count(*) FROM outbox WHERE status = 'failed'"),
                       **Outbox(cfg, store).sending_status(now)},
            "open": {"1": levels.get(1, 0), "2": levels.get(2, 0), "3": levels.get(3, 0),
                     "total": sum(levels.values())},
            "next_deadlines": upcoming(store, cfg, now),
            "quarantine_held": store.scalar("SELECT count(*) FROM quarantine WHERE status = 'held'"),
            "digest_last_sent": store.get_state(digest.STATE_KEY),
        }
    finally:
        store.close()
    ok = True
    if not args.no_connect:
        secrets, errors = _secrets(cfg, env)
        imap = ([_secret_failure("imap", errors["imap"])] if "imap" in errors else
                probe.imap(cfg.mailbox, secrets["imap"], secrets["token"], QUICK, folders=False))[0]
        smtp = (_secret_failure("smtp", errors["smtp"]) if "smtp" in errors else
                probe.smtp(cfg.smtp, secrets["smtp"], secrets["token"], QUICK))
        doc["mailbox"], doc["smtp"] = imap.as_dict(), smtp.as_dict()
        ok = imap.ok and smtp.ok
    if args.json:
        print_json(doc)
    else:
        print(format_status(doc, cfg))
    return 0 if ok else 1


def format_status(doc: dict, cfg) -> str:
    tz = cfg.tz
    d = doc["daemon"]
    lines = [f"daemon      {'running (pid ' + str(d['pid']) + ')' if d['running'] else 'not running'}"]
    for key, label in (("mailbox", "mailbox"), ("smtp", "smtp")):
        if key in doc:
            r = doc[key]
            lines.append(f"{label:<11} {'ok' if r['ok'] else 'FAIL'}  {r['detail']}")
            if r["hint"]:
                lines.append(f"{'':13}hint: {r['hint']}")
    if doc["last_poll"]:
        lines.append(f"last poll   {_local(doc['last_poll'], tz)} ({_ago(doc['last_poll_seconds_ago'])})")
    else:
        lines.append("last poll   never")
    o = doc["outbox"]
    limit = f", {o['sent_last_24h']}/{o['limit']} sent in 24 h" if o["limit"] else f", {o['sent_last_24h']} sent in 24 h"
    lines.append(f"outbox      {o['queued']} queued ({o['retrying']} retrying), {o['failed']} failed{limit}"
                 + (f", {o['held']} held by the daily limit" if o["held"] else ""))
    op = doc["open"]
    lines.append(f"open        {op['total']}: level 1 {op['1']}, level 2 {op['2']}, level 3 {op['3']}")
    lines.append(f"quarantine  {doc['quarantine_held']} held")
    lines.append(f"digest      last sent {doc['digest_last_sent'] or 'never'}")
    lines.append("next deadlines" + ("" if doc["next_deadlines"] else "  none"))
    for n in doc["next_deadlines"]:
        lines.append(f"  {_local(n['due'], tz)}  {n['deadline']:<4} {n['ref']}  L{n['level']}  {n['subject']}")
    return "\n".join(lines)


# --- digest -----------------------------------------------------------------

def digest_command(app, args) -> int:
    now = utcnow()
    if args.send:
        with app.store.transaction():
            message_id = digest.queue(app.workflow, app.cfg, now)
        if message_id is None:
            print("maildesk: nobody to send the digest to: set [digest] to or [teams] admins", file=sys.stderr)
            return 1
        result = app.outbox.flush(now)
        state = "sent" if result.sent else "queued (the daemon sends it when the server answers)"
        print(f"digest {state} to {', '.join(digest.recipients(app.cfg))}")
        return 0
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            print(f"maildesk: --date must look like 2026-11-24, got {args.date!r}", file=sys.stderr)
            return 2
        now = min(digest.moment_for(app.cfg, day), now)
    doc = digest.build(app.store, app.cfg, now)
    if args.json:
        print_json(doc)
        return 0
    rendered = digest.render(app.templates, app.cfg, doc)
    print(rendered.html if args.html else f"Subject: {rendered.subject}\n\n{rendered.text}", end="")
    return 0


# --- outbox -----------------------------------------------------------------

def outbox_command(app, args) -> int:
    now = utcnow()
    if args.retry is not None or args.all:
        count = app.outbox.retry(now, args.retry)
        if not count:
            print(f"maildesk: no waiting or failed mail {'#' + str(args.retry) if args.retry else ''}".rstrip(),
                  file=sys.stderr)
            return 1
        result = app.outbox.flush(now)
        print(f"{count} mail(s) put back in line: {result.sent} sent, {result.retry} will be retried, "
              f"{result.failed} failed again, {result.held} held by the daily limit")
        return 0 if not result.failed else 1
    where = "o.status = 'failed'" if args.failed else "o.status IN ('queued', 'failed')"
    rows = [dict(r) for r in app.store.all(
        "SELECT o.id, o.status, o.attempts, o.kind, o.audience, o.rcpt, o.subject, o.created_at, "
        f"o.next_attempt_at, o.last_error, c.ref FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id "
        f"WHERE {where} ORDER BY o.id")]
    for r in rows:
        r["to"] = json.loads(r.pop("rcpt"))
    if args.json:
        print_json(rows)
        return 0
    tz = app.cfg.tz
    for r in rows:
        when = ("next try " + _local(from_iso(r["next_attempt_at"]), tz, "%m-%d %H:%M")) if r["status"] == "queued" else "gave up"
        print(f"#{r['id']:<5} {r['status']:<7} {r['attempts']} tries  {when:<20} {r['audience']}:{r['kind']:<12} "
              f"{', '.join(r['to'])}" + (f"  [{r['ref']}]" if r["ref"] else ""))
        print(f"{'':8}{digest.one_line(r['subject'], 70)}")
        if r["last_error"]:
            print(f"{'':8}error: {digest.one_line(r['last_error'], 100)}")
    print(f"{len(rows)} mail(s) {'failed' if args.failed else 'waiting or failed'}"
          + ("; retry with: maildesk outbox --retry ID (or --all)" if rows else ""))
    return 0


# --- quarantine ---------------------------------------------------------------

def quarantine_command(app, args) -> int:
    from .imap import MailboxError
    try:
        if args.action == "retry":
            if not args.uids and not args.all:
                print("maildesk: name the UIDs to retry (see `maildesk quarantine list`), or --all", file=sys.stderr)
                return 2
            if app.cfg.mailbox.read_only:
                print("maildesk: mailbox.read_only is set: nothing can be moved", file=sys.stderr)
                return 1
            return _retry(app, args)
        return _list(app, args)
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1


def _list(app, args) -> int:
    with quarantine.Folder(app) as folder:
        items = folder.list(progress)
    if args.json:
        print_json(items)
        return 0
    tz = app.cfg.tz
    for q in items:
        print(f"uid {q['uid'] if q['uid'] is not None else '-':<6} {_local(q['at'], tz)}  {q['status'] or 'no record':<8} "
              f"{q['sender'] or '?'}  {digest.one_line(q['subject'], 50)!r}")
        if q["reason"]:
            print(f"{'':11}reason: {digest.one_line(q['reason'], 100)}")
    held = sum(1 for q in items if q["uid"] is not None)
    print(f"{held} message(s) in {app.cfg.mailbox.quarantine_folder}"
          + ("; retry with: maildesk quarantine retry UID (or --all)" if held else ""))
    return 0


def _retry(app, args) -> int:
    with quarantine.Folder(app) as folder:
        uids = folder.uids() if args.all else args.uids
        moved, missing = folder.retry(uids, progress)
    for uid in missing:
        print(f"maildesk: no message with UID {uid} in {app.cfg.mailbox.quarantine_folder}", file=sys.stderr)
    print(f"{len(moved)} message(s) moved back to {app.cfg.mailbox.folder}; the daemon handles them on its next pass")
    return 1 if missing else 0


COMMANDS = {"digest": digest_command, "outbox": outbox_command, "quarantine": quarantine_command}
WITHOUT_APP = {"status": status, "check": check}  # they report missing secrets instead of stopping on them
