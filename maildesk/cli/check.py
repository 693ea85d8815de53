"""`maildesk init` and `maildesk check`: a starter config, then every setting tried for real
(secrets, IMAP and SMTP logins, folders, the database, the install, staff trust, templates)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from maildesk.adapters import oauth2, probe
from maildesk.cli.common import print_json
from maildesk.cli.display import shown
from maildesk.config import ConfigError, placeholders, read_secret, warnings
from maildesk.outbound.templates import shipped
from maildesk.store import reports
from maildesk.store.db import NoSchemaYet, SchemaError, safe_url
from maildesk.store.opening import open_store

SHIPPED_CONFIG = shipped("maildesk.toml")  # the commented starter config `init` writes


def add_parsers(sub) -> None:
    ck = sub.add_parser("check", help="validate the config, try IMAP login, folders and SMTP login")
    ck.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")
    ck.add_argument("--timeout", type=float, default=10, help="seconds per connection (default 10)")
    ck.add_argument("--staff-mail", metavar="FILE", help="a staff mail (.eml) to judge instead of the last one seen")

    it = sub.add_parser("init", help="write a commented starter config where --config points")
    it.add_argument("--force", action="store_true", help="overwrite an existing file")


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


def read_secrets(cfg, env):
    """(imap password, smtp password, token source), or the config error for each that failed."""
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
    if cfg.storage.url:
        try:
            store = open_store(cfg, readonly=True, wait=5)
        except NoSchemaYet:
            return probe.Result("database", True, f"{safe_url(cfg.storage.url)} (PostgreSQL, empty: the schema is "
                                                  f"created on the first run)")
        except SchemaError as e:
            return probe.Result("database", False, str(e), "run `maildesk migrate`")
        except Exception as e:  # unreachable, refused, password not set: its own words
            return probe.Result("database", False, str(e)[:300], "check [storage] url, its password and the server")
        store.close()
        return probe.Result("database", True, f"{store.where} (PostgreSQL, schema {store.version})")
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
    from maildesk.service.template_check import count, problems
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
    secrets, errors = read_secrets(cfg, env)
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
    warned = warnings(cfg)  # not failures: the daemon runs, but the law wants them filled in
    if args.json:
        print_json({"ok": ok, "checks": [r.as_dict() for r in results], "warnings": warned})
    else:
        for r in results:
            print(shown(f"{'ok' if r.ok else 'FAIL':<5} {r.name:<12} {r.detail}"))
            if r.hint:
                print(shown(f"{'':18}hint: {r.hint}"))
        for warning in warned:
            print(shown(f"{'warn':<5} {'config':<12} {warning}"))
        print("all good" if ok else "something needs fixing (see FAIL above)")
    if any(r.name == "templates" and not r.ok for r in results):
        return 2  # as `run` and `once` do: they would not start
    return 0 if ok else 1


def _staff_trust(cfg, path: str | None) -> list[probe.Result]:
    """How staff mail is judged: the level chosen, and what the last staff mail (or FILE)
    says the staff domain lacks, in the words of the Workspace console."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32
    from maildesk.core import trust
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
    elif cfg.staff and (cfg.storage.url or cfg.database_path.exists()):
        try:
            store = open_store(cfg, readonly=True)
        except Exception as e:  # the database's own line (check `database`) says what is wrong
            return [probe.Result("staff trust", True, level + f"no staff mail read: {str(e)[:200]}")]
        try:
            raw = reports.last_mail_from(store, cfg.staff)
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
    trusted, why = trust.verify_sender(auth, sender, sec.authserv_id, arc, sec.staff_trust)
    lacks = trust.auth_report(auth, sec.authserv_id, sender)
    detail = f"{level}staff mail from {sender}: {'trusted' if trusted else 'REFUSED'} ({why.split(' (')[0]})"
    return [probe.Result("staff trust", trusted, detail, "; ".join(lacks) or None)]
