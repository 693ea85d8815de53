"""The admin commands: status, check, init, digest, outbox, quarantine.

cli.py only parses; the work is here so the command line stays thin. Each
command prints lines a person reads, or `--json` a script parses, and
exits 0 when all is well, 1 when something needs attention, 2 for bad
config or usage. Loops over many items show a progress bar on a terminal
and stay quiet in a pipe.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, datetime
from pathlib import Path

from tqdm import tqdm

from maildesk.service import digest, quarantine
from maildesk.adapters import oauth2, probe
from maildesk.core import policy, timefmt
from maildesk.config import ConfigError, placeholders, read_secret
from maildesk.cli.display import dumps, shown
from maildesk.store.db import DatabaseReadOnly, SchemaError, Store, from_iso
from maildesk.outbound.templates import shipped
from maildesk.clock import utcnow
from maildesk.store.inbox import UNFETCHABLE_TRIES

SHIPPED_CONFIG = shipped("maildesk.toml")  # the commented starter config `init` writes
QUICK = 5  # seconds: `status` must answer fast even when a server does not
DEFAULT_MAX_AGE = 600  # seconds: the daemon polls at least every minute, IDLE or not
HEALTHY, DEGRADED, DOWN = 0, 1, 2  # `status` exit codes, for monitoring



def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def print_json(doc) -> None:
    print(dumps(doc, default=_plain))


def _local(value: datetime | None, tz) -> str:
    return timefmt.local(value, tz)


def _ago(seconds: float) -> str:
    return digest.duration(max(seconds, 0), "en") + " ago"


def number(text: str) -> int:
    """An argparse type: a whole number SQLite can hold (a row id, a UID, a limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range")
    return value


def progress(items, what: str):
    """A bar on a terminal, nothing in a pipe or a log."""
    return tqdm(items, desc=what, unit="", disable=not sys.stderr.isatty(), leave=False)


# --- parsers ----------------------------------------------------------------

def add_parsers(sub) -> None:
    st = sub.add_parser("status", help="health check: exit 0 healthy, 1 degraded, 2 down or misconfigured")
    st.add_argument("--no-connect", action="store_true", help="skip the IMAP and SMTP checks")
    st.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE, metavar="SECONDS",
                    help=f"degraded when the daemon's last successful poll is older (default {DEFAULT_MAX_AGE})")
    st.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")

    ck = sub.add_parser("check", help="validate the config, try IMAP login, folders and SMTP login")
    ck.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")
    ck.add_argument("--timeout", type=float, default=10, help="seconds per connection (default 10)")
    ck.add_argument("--staff-mail", metavar="FILE", help="a staff mail (.eml) to judge instead of the last one seen")

    it = sub.add_parser("init", help="write a commented starter config where --config points")
    it.add_argument("--force", action="store_true", help="overwrite an existing file")

    dg = sub.add_parser("digest", help="the admins' daily digest: print it (default) or send it now")
    what = dg.add_mutually_exclusive_group()
    what.add_argument("--print", action="store_true", help="print the text version (default)")
    what.add_argument("--send", action="store_true", help="queue it for [digest] to and send it now")
    dg.add_argument("--date", help="the digest as of send_at that day (YYYY-MM-DD, local time)")
    dg.add_argument("--html", action="store_true", help="print the HTML version instead")
    dg.add_argument("--json", action="store_true", help="print the numbers as JSON")

    ob = sub.add_parser("outbox", help="mail waiting or failed; retry or cancel it")
    ob.add_argument("action", nargs="?", choices=("list", "cancel"), default="list",
                    help="cancel ID --reason TEXT: stop a mail for good")
    ob.add_argument("id", nargs="?", type=int, metavar="ID", help="the mail to cancel (from the list)")
    ob.add_argument("--reason", help="why it is cancelled (kept on the mail and its complaint)")
    ob.add_argument("--failed", action="store_true", help="only mail that failed for good or was cancelled")
    again = ob.add_mutually_exclusive_group()
    again.add_argument("--retry", type=number, metavar="ID", help="put this mail back in line and send it now")
    again.add_argument("--all", action="store_true", help="retry every failed or waiting mail now")
    ob.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")

    qu = sub.add_parser("quarantine", help="messages maildesk could not handle: list, or retry")
    qu.add_argument("action", nargs="?", choices=("list", "retry"), default="list",
                    help="list (default) or retry UID... / --all")
    qu.add_argument("uids", nargs="*", type=number, metavar="UID", help="UIDs in the quarantine folder (from list)")
    qu.add_argument("--all", action="store_true", help="retry every message in the quarantine folder")
    qu.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")

    sp = sub.add_parser("spam", help="mail in Gmail's spam folder: list it, or move one to the inbox to be handled")
    sp.add_argument("action", nargs="?", choices=("list", "rescue"), default="list",
                    help="list (default) or rescue UID")
    sp.add_argument("uid", nargs="?", type=int, metavar="UID", help="for rescue: the UID shown by list")
    sp.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")


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
    from maildesk.adapters import oauth2
    out, errors = {}, {}
    for name, section, sec in (("imap", "mailbox", cfg.mailbox), ("smtp", "smtp", cfg.smtp)):
        try:
            out[name] = None if cfg.oauth2 else read_secret(section, sec, env)
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


def _dry_run_dir(cfg) -> probe.Result:
    """`once --dry-run` writes its mail there: it must be writable by whoever runs the trial."""
    path = cfg.dry_run_path
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), None)
    if parent is not None and os.access(parent, os.W_OK | os.X_OK):
        return probe.Result("dry-run dir", True, f"{path}" + ("" if path.exists() else " (created on the first trial)"))
    return probe.Result("dry-run dir", False, f"{path} is not writable by this user",
                        "set storage.dry_run_dir to a folder the daemon's user can write, or leave it unset "
                        "(default: dry-run/ beside the database)")


def _templates(cfg) -> list[probe.Result]:
    """Every template rendered once (template_check): one line, or one FAIL line per broken file."""
    from maildesk.outbound.template_check import count, problems
    from maildesk.outbound.templates import Templates
    templates = Templates(cfg.templates_dir, cfg.policy.language, cfg.tz)
    found = problems(templates, cfg)
    if not found:
        where = f"; {cfg.templates_dir} over the shipped ones" if cfg.templates_dir else ""
        return [probe.Result("templates", True, f"{count()} rendered{where}")]
    hint = ("fix the file, or remove it from templates.dir to use the shipped one" if cfg.templates_dir
            else "the package's templates are missing: reinstall maildesk")
    return [probe.Result("templates", False, line, hint) for line in found]


def _can_reach(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first folder on the way to `path` that `uid` may not enter (or the file it may not
    read), else None: what the kernel would refuse before Python even starts."""
    import stat
    for step in [*reversed(path.parents), path]:
        st = step.stat()
        need = stat.S_IXOTH if step != path else stat.S_IROTH
        if st.st_uid == uid:
            need <<= 6
        elif st.st_gid in gids:
            need <<= 3
        if not st.st_mode & need:
            return step
    return None


def _install(cfg) -> probe.Result:
    """The service's user (the database's owner) must be able to run this interpreter and read
    this package: a venv built on a Python under /root works for root and no one else."""
    import pwd
    import sys
    path = cfg.database_path
    uid = path.stat().st_uid if path.exists() else os.geteuid()  # before the first start: whoever runs check
    paths = [Path(sys.executable).resolve(), Path(os.__file__).resolve(), Path(__file__).resolve()]
    if uid == 0:
        return probe.Result("install", True, f"{paths[0]}")
    try:
        user = pwd.getpwuid(uid)
        name, gids = user.pw_name, set(os.getgrouplist(user.pw_name, user.pw_gid))
    except KeyError:
        name, gids = str(uid), set()
    for p in paths:
        if (blocked := _can_reach(p, uid, gids)) is not None:
            return probe.Result("install", False, f"{p}: {name} cannot reach it ({blocked} is closed to {name})",
                                "install maildesk in a venv made from a system Python, e.g. "
                                "/usr/bin/python3 -m venv /opt/maildesk/.venv (README, \"On a server, step by step\")")
    return probe.Result("install", True, f"{paths[0]} (usable by {name})")


def check(cfg, args, env=os.environ) -> int:
    results = [probe.Result("config", True, f"{cfg.path} ({len(cfg.staff)} staff, {cfg.policy.timezone})"),
               *(probe.Result("config", False, problem) for problem in placeholders(cfg)),
               _database(cfg)]
    secrets, errors = _secrets(cfg, env)
    if "imap" in errors:
        results.append(_secret_failure("imap", errors["imap"]))
    else:
        results += probe.imap(cfg.mailbox, secrets["imap"], secrets["token"], args.timeout)
    if "smtp" in errors:
        results.append(_secret_failure("smtp", errors["smtp"]))
    else:
        results.append(probe.smtp(cfg, secrets["smtp"], secrets["token"], args.timeout))
    results += [_dry_run_dir(cfg), _install(cfg)]
    results += _staff_trust(cfg, getattr(args, "staff_mail", None))
    results += _templates(cfg)
    ok = all(r.ok for r in results)
    if args.json:
        print_json({"ok": ok, "checks": [r.as_dict() for r in results]})
    else:
        for r in results:
            print(shown(f"{'ok' if r.ok else 'FAIL':<5} {r.name:<12} {r.detail}"))
            if r.hint:
                print(shown(f"{'':18}hint: {r.hint}"))
        print("all good" if ok else "something needs fixing (see FAIL above)")
    if any(r.name == "templates" and not r.ok for r in results):
        return 2  # as `run` and `once` do: they would not start
    return 0 if ok else 1


def _staff_trust(cfg, path: str | None) -> list[probe.Result]:
    """How staff mail is judged: the level chosen, and what the last staff mail (or FILE)
    says the staff domain lacks, in the words of the Workspace console."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32
    from maildesk.core import staff
    sec = cfg.security
    if not sec.require_authenticated_staff:
        return [probe.Result("staff trust", True, "not checked: [security] require_authenticated_staff = false "
                             "(anyone can write as staff)")]
    level = ("" if sec.staff_trust == "dmarc" else
             f'weaker trust chosen: staff_trust = "{sec.staff_trust}" ('
             + ("Google Workspace's default DKIM key also counts" if sec.staff_trust == "dkim"
                else "SPF alone also counts") + "); ")
    raw = None
    if path:
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            return [probe.Result("staff trust", False, f"{path}: {e.strerror}", "give a saved .eml file")]
    elif cfg.staff and cfg.database_path.exists():
        store = Store(cfg.database_path)
        try:
            marks = ",".join("?" * len(cfg.staff))
            row = store.one(f"SELECT raw FROM messages WHERE direction = 'in' AND lower(from_addr) IN ({marks}) "
                            "ORDER BY at DESC LIMIT 1", *cfg.staff)
            raw = row["raw"] if row else None
        finally:
            store.close()
    if raw is None:
        return [probe.Result("staff trust", True, level + "no staff mail seen yet; "
                             "`maildesk check --staff-mail FILE` judges a saved one")]
    head = BytesHeaderParser(policy=compat32).parsebytes(bytes(raw)[:262144])
    sender = (head.get("From") or "").rpartition("<")[2].rstrip(">").strip().lower()
    auth = tuple(" ".join(str(v).split()) for v in head.get_all("Authentication-Results") or ())
    arc = tuple((k, " ".join(str(v).split())) for k, v in head.items()
                if k.lower() in ("arc-seal", "arc-authentication-results"))
    trusted, why = staff.verify_sender(auth, sender, sec.authserv_id, arc, sec.staff_trust)
    lacks = staff.auth_report(auth, sec.authserv_id, sender)
    detail = f"{level}staff mail from {sender}: {'trusted' if trusted else 'REFUSED'} ({why.split(' (')[0]})"
    return [probe.Result("staff trust", trusted, detail, "; ".join(lacks) or None)]


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
    """A health check for people and monitoring. Exit 0 healthy; 1 degraded (the last
    successful poll is older than --max-age, or a server check failed); 2 down (no daemon
    running) or misconfigured (no database, wrong schema). Needs no secrets: a server
    check whose secret is not in this environment is skipped, not failed."""
    from maildesk.lock import InstanceLock
    from maildesk.adapters.outbox import Outbox
    now = utcnow()
    try:
        store = Store(cfg.database_path, readonly=True)
    except (SchemaError, DatabaseReadOnly) as e:
        return _report_down(args, str(e))
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
            **mailbox_state(store),
            "oauth2_token_dead": oauth2.dead_token(cfg),
        }
    finally:
        store.close()
    problems = []
    if not args.no_connect:
        secrets, errors = _secrets(cfg, env)
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
                        f"{_local(from_iso(doc['outbox']['paused']['since']), cfg.tz)}")
    if pid is None:
        state = DOWN
        problems.insert(0, "the daemon is not running")
    else:
        age = doc["last_poll_seconds_ago"]
        if age is None or age > args.max_age:
            problems.insert(0, f"last successful poll {'never' if age is None else _ago(age)} "
                               f"(--max-age {args.max_age} s)")
        state = DEGRADED if problems else HEALTHY
    doc["health"] = {"state": ("healthy", "degraded", "down")[state], "exit": state, "problems": problems}
    if args.json:
        print_json(doc)
    else:
        print(format_status(doc, cfg))
    return state


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
    for (value,) in store.all("SELECT value FROM state WHERE key LIKE 'unfetchable:%'"):
        unfetchable += [{"uid": int(uid), **entry} for uid, entry in json.loads(value or "{}").items()]
    left = [json.loads(v) for (v,) in store.all("SELECT value FROM state WHERE key LIKE 'first_start:%'")]
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
    sent = f"{o['sent_last_24h']}/{o['limit']}" if o["limit"] else f"{o['sent_last_24h']}"
    elsewhere = f" ({o['sent_elsewhere']} by staff from the mailbox itself)" if o["sent_elsewhere"] else ""
    lines.append(f"outbox      {o['queued']} queued ({o['retrying']} retrying), {o['failed']} failed, "
                 f"{sent} recipients in 24 h{elsewhere}"
                 + (f", {o['held']} held {'by the pause' if o['paused'] else 'by the daily limit'}" if o["held"] else ""))
    if o["paused"]:
        p = o["paused"]
        lines.append(f"PAUSED      all sending since {_local(from_iso(p['since']), tz)}: Gmail's daily limit "
                     f"({p['error']}); next try {_local(from_iso(p['next_probe']), tz)} (one mail an hour "
                     "until Gmail takes mail again, at most about 24 h)")
    op = doc["open"]
    lines.append(f"open        {op['total']}: level 1 {op['1']}, level 2 {op['2']}, level 3 {op['3']}")
    lines.append(f"quarantine  {doc['quarantine_held']} held")
    logins = doc["imap_logins"]
    lines.append(f"imap logins {logins['today']} today, {logins['total']} in all"
                 + (f", last {_local(from_iso(logins['last']), tz)}" if logins["last"] else ""))
    if doc["oauth2_token_dead"]:
        lines.append(f"TROUBLE     {doc['oauth2_token_dead']}")
    if doc["loop_trouble"]:
        t = doc["loop_trouble"]
        lines.append(f"TROUBLE     the main loop keeps failing since {_local(from_iso(t['since']), tz)}: {t['error']}")
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
        lines.append(f"  {_local(n['due'], tz)}  {n['deadline']:<4} {n['ref']}  L{n['level']}  {n['subject']}")
    return "\n".join(shown(line) for line in lines)


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
        if args.json:
            print_json({"sent": bool(result.sent), "to": digest.recipients(app.cfg), "message_id": message_id})
            return 0
        state = "sent" if result.sent else "queued (the daemon sends it when the server answers)"
        print(f"digest {state} to {', '.join(digest.recipients(app.cfg))}")
        return 0
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            day = None
        if day is None or not 1970 <= day.year < 9999:  # the digest looks a week back and a day ahead
            print(f"maildesk: --date must look like 2026-11-24 (1970 to 9998), got {args.date!r}", file=sys.stderr)
            return 2
        now = min(digest.moment_for(app.cfg, day), now)
    doc = digest.build(app.store, app.cfg, now)
    if args.json:
        print_json(doc)
        return 0
    rendered = digest.render(app.templates, app.cfg, doc)
    text = rendered.html if args.html else f"Subject: {rendered.subject}\n\n{rendered.text}"
    print("\n".join(shown(line) for line in text.split("\n")), end="")
    return 0


# --- outbox -----------------------------------------------------------------

def _operator() -> str:
    """Who runs the command, for the audit trail: the login name."""
    import getpass
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def outbox_command(app, args) -> int:
    now = utcnow()
    if args.action == "cancel":
        if args.id is None or not (args.reason or "").strip():
            print("maildesk: usage: maildesk outbox cancel ID --reason TEXT", file=sys.stderr)
            return 2
        who = _operator()
        refused = app.outbox.cancel(args.id, args.reason.strip(), who, now)
        if refused:
            print(f"maildesk: {refused}", file=sys.stderr)
            return 1
        print(f"mail #{args.id} cancelled by {who}: it will not be sent")
        return 0
    if args.id is not None:
        print("maildesk: an ID goes with cancel (maildesk outbox cancel ID --reason TEXT) or --retry ID",
              file=sys.stderr)
        return 2
    if args.retry is not None or args.all:
        count = app.outbox.retry(now, args.retry)
        if not count and args.all:  # nothing to do is not a failure (cron, scripts)
            print("no waiting or failed mail: nothing to retry")
            return 0
        if not count:
            print(f"maildesk: no waiting or failed mail #{args.retry}", file=sys.stderr)
            return 1
        result = app.outbox.flush(now)
        pause = app.outbox.paused()
        print(f"{count} mail(s) put back in line: {result.sent} sent, {result.retry} will be retried, "
              f"{result.failed} failed again, {result.held} held by "
              + (f"the pause (Gmail's daily limit since {pause['since']}; next try {pause['next_probe']})"
                 if pause else "the daily limit"))
        return 0 if not result.failed else 1
    where = "o.status IN ('failed', 'cancelled')" if args.failed else "o.status IN ('queued', 'failed')"
    rows = [dict(r) for r in app.store.all(
        "SELECT o.id, o.status, o.attempts, o.kind, o.audience, o.rcpt, o.subject, o.created_at, "
        "o.next_attempt_at, o.last_error, o.cancelled_at, o.cancelled_by, o.cancel_reason, c.ref "
        f"FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id WHERE {where} ORDER BY o.id")]
    for r in rows:
        r["to"] = json.loads(r.pop("rcpt"))
    if args.json:
        print_json(rows)
        return 0
    tz = app.cfg.tz
    for r in rows:
        when = {"queued": "next try " + _local(from_iso(r["next_attempt_at"]), tz),
                "cancelled": "cancelled " + _local(from_iso(r["cancelled_at"]), tz)}.get(
                    r["status"], "gave up")
        print(shown(f"#{r['id']:<5} {r['status']:<9} {r['attempts']} tries  {when:<20} {r['audience']}:{r['kind']:<12} "
                    f"{', '.join(r['to'])}" + (f"  [{r['ref']}]" if r["ref"] else "")))
        print(f"{'':8}{shown(digest.one_line(r['subject'], 70))}")
        if r["status"] == "cancelled":
            print(f"{'':8}cancelled by {shown(r['cancelled_by'])}: {shown(digest.one_line(r['cancel_reason'], 100))}")
        if r["last_error"]:
            print(f"{'':8}error: {shown(digest.one_line(r['last_error'], 100))}")
    print(f"{len(rows)} mail(s) {'failed or cancelled' if args.failed else 'waiting or failed'}"
          + ("; retry with: maildesk outbox --retry ID (or --all); stop one with: maildesk outbox cancel ID "
             "--reason TEXT" if rows else ""))
    return 0


# --- quarantine ---------------------------------------------------------------

def quarantine_command(app, args) -> int:
    from maildesk.adapters.imap_types import MailboxError
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
        print(shown(f"uid {q['uid'] if q['uid'] is not None else '-':<6} {_local(q['at'], tz)}  "
                    f"{q['status'] or 'no record':<8} {q['sender'] or '?'}  {digest.one_line(q['subject'], 50)!r}"))
        if q["reason"]:
            print(f"{'':11}reason: {shown(digest.one_line(q['reason'], 100))}")
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


def spam_command(app, args) -> int:
    """`spam list`: what the last pass found in spam and left there. `spam rescue UID`: move it
    to the inbox, where the daemon's next pass (or `once`) handles it like any other mail."""
    from maildesk.daemon import Daemon
    from maildesk.adapters.imap_types import MailboxError
    if args.action == "list":
        doc = digest.spam(app.store, listed=1000)
        if args.json:
            print_json(doc)
            return 0
        for m in doc["listed"]:
            print(f"uid {m['uid']:<6} {_local(m['at'], app.cfg.tz)}  {m['sender']}  {digest.one_line(m['subject'], 60)!r}")
        print(f"{doc['count']} message(s) in {doc['folder'] or 'the spam folder'}, none answered"
              + ("; to have one handled: maildesk spam rescue UID" if doc["count"] else ""))
        return 0
    if args.uid is None:
        print("maildesk: name the UID to rescue (see `maildesk spam list`)", file=sys.stderr)
        return 2
    if app.cfg.mailbox.read_only:
        print("maildesk: mailbox.read_only is set: nothing can be moved", file=sys.stderr)
        return 1
    daemon = Daemon(app)
    daemon.inbox = app.make_inbox()
    try:
        daemon.connect()
        folder = daemon.inbox.junk_folder_name()
        if not folder:
            print("maildesk: no spam folder (mailbox.junk_folder)", file=sys.stderr)
            return 1
        _validity, uids, _new = daemon.inbox.read_headers(folder, set(), None)
        if args.uid not in uids:
            print(f"maildesk: no message with UID {args.uid} in {folder} (see `maildesk spam list`)", file=sys.stderr)
            return 1
        daemon.inbox.move_from(folder, [args.uid], app.cfg.mailbox.folder)
    except MailboxError as e:
        print(f"maildesk: {e}", file=sys.stderr)
        return 1
    finally:
        daemon.inbox.close()
    print(f"UID {args.uid} moved from {folder} to {app.cfg.mailbox.folder}: the next pass handles it")
    return 0


COMMANDS = {"digest": digest_command, "outbox": outbox_command, "quarantine": quarantine_command,
            "spam": spam_command}
WITHOUT_APP = {"status": status, "check": check}  # they report missing secrets instead of stopping on them
