"""maildesk.toml + environment -> frozen dataclasses.

Every problem is reported as one sentence naming the key, so an admin can
fix a bad config without reading code. Secrets are read from the
environment or a file, never echoed back.
"""
from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A config problem, phrased for the admin: names the key and what is wrong."""


REQUIRED = object()  # marker default: the key must be present


def _req():
    return field(default=REQUIRED)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MailboxConfig:
    host: str = _req()
    port: int = 993
    security: str = "ssl"
    username: str = _req()
    password: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str = "maildesk/processed"
    quarantine_folder: str = "maildesk/quarantine"
    sent_folder: str | None = None
    idle: bool = True
    idle_renew_seconds: int = 540
    poll_seconds: int = 60
    read_only: bool = False
    max_message_mb: float = 10.0  # above: read part by part (imap.py), big attachments by name and size
    timeout_seconds: int = 30
    first_start_hours: float = 24  # first run on an empty database: older inbox mail is left untouched
    junk_folder: str = "auto"  # the spam folder read each pass ("auto": flagged \\Junk; "": none)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = _req()
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    from_address: str = _req()
    from_name: str = "imolocale"
    daily_limit: int = 0  # 0: no limit; defaults to 450 for gmail.com below
    reserve: int = 50
    timeout_seconds: int = 30
    connections: int = 3  # at most this many SMTP connections side by side for a backlog
    saves_to_sent: str = "auto"  # the server files what it accepts in the mailbox's Sent folder (Gmail: auto)


@dataclass(frozen=True)
class StorageConfig:
    database: str = "maildesk.db"
    attachment_max_mb: float = 10.0
    dry_run_dir: str | None = None  # default: "dry-run" beside the database (writable by the daemon)


@dataclass(frozen=True)
class TeamsConfig:
    customer_service: list[str] = _req()
    resolution: list[str] = _req()
    customer_experience: list[str] = _req()
    admins: list[str] = _req()
    # staff mail domains: their unlisted addresses are colleagues, never customers (workflow._unlisted)
    domains: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PolicyConfig:
    reference_prefix: str = "IMO"
    language: str = "fr"
    timezone: str = "Europe/Paris"
    escalate_to_resolution_hours: float = 24
    findings_due_hours: float = 48
    findings_reminder_hours_before: float = 6
    escalate_to_experience_hours: float = 48
    resolution_target_days: float = 5
    target_warning_hours: float = 24
    update_every_hours: float = 24
    satisfaction_wait_days: float = 3
    sweep_seconds: int = 60
    max_auto_replies_per_hour: int = 5
    low_rating: int = 2
    templates: str | None = None  # the older spelling of [templates] dir


@dataclass(frozen=True)
class TemplatesConfig:
    dir: str | None = None  # the operator's copies, file by file over the shipped ones


@dataclass(frozen=True)
class SecurityConfig:
    authserv_id: str = "mx.google.com"
    require_authenticated_staff: bool = True
    expose_staff_address: bool = False
    staff_trust: str = "dmarc"  # "dkim": also Workspace's default key; "spf-aligned": also SPF (weaker)


@dataclass(frozen=True)
class SellersConfig:
    seller_response_hours: float = 48
    flag_after: int = 3
    window_days: float = 90
    webhook_url: str | None = None


@dataclass(frozen=True)
class DigestConfig:
    send_at: str = "08:00"
    to: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    file: str | None = None
    format: str = "text"
    max_bytes: int = 10_000_000
    backup_count: int = 5


@dataclass(frozen=True)
class OAuth2Config:
    client_id: str = _req()
    client_secret_env: str = _req()
    refresh_token_env: str = _req()
    token_uri: str = "https://oauth2.googleapis.com/token"
    # written when Google refuses the refresh token (mail cannot tell anyone then): for monitoring
    dead_token_file: str = "oauth2-token-dead"


@dataclass(frozen=True)
class Config:
    mailbox: MailboxConfig
    smtp: SmtpConfig
    storage: StorageConfig
    teams: TeamsConfig
    policy: PolicyConfig
    security: SecurityConfig
    sellers: SellersConfig
    digest: DigestConfig
    logging: LoggingConfig
    templates: TemplatesConfig
    oauth2: OAuth2Config | None
    staff: dict[str, str]  # address -> team name, from [teams] and [staff]
    staff_names: dict[str, str]  # address -> display name, from [staff]
    base_dir: Path
    path: Path | None = None
    unknown: tuple[str, ...] = ()  # keys this version does not know (a newer config): warned about, ignored

    @property
    def dry_run_path(self) -> Path:
        if self.storage.dry_run_dir:
            return self.resolve(self.storage.dry_run_dir)
        return self.database_path.parent / "dry-run"

    @property
    def database_path(self) -> Path:
        return self.resolve(self.storage.database)

    def resolve(self, p: str) -> Path:
        """Relative paths in the config are relative to the config file."""
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def templates_dir(self) -> Path | None:
        """[templates] dir (or [policy] templates), relative to the config file; None: the shipped ones."""
        given = self.templates.dir or self.policy.templates
        return self.resolve(given) if given else None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.policy.timezone)

    @property
    def support_address(self) -> str:
        return self.smtp.from_address.lower()

    @property
    def support_domain(self) -> str:
        return self.support_address.rpartition("@")[2]

    def staff_domain(self, address: str) -> bool:
        """Is the address on one of the staff domains ([teams] domains) or a subdomain of one?"""
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.teams.domains)

    def team(self, level: int) -> list[str]:
        return {1: self.teams.customer_service, 2: self.teams.resolution,
                3: self.teams.customer_experience}[level]

    @property
    def smtp_daily_limit(self) -> int:
        if self.smtp.daily_limit:
            return self.smtp.daily_limit
        return 450 if self.smtp.host.endswith(("gmail.com", "googlemail.com")) else 0

    @property
    def smtp_saves_to_sent(self) -> bool:
        """Does the SMTP server file every mail it accepts in the mailbox's Sent folder, as Gmail
        does? Then a mail whose send a crash interrupted is looked up there before it goes again."""
        if self.smtp.saves_to_sent != "auto":
            return self.smtp.saves_to_sent == "yes"
        return self.smtp.host.endswith(("gmail.com", "googlemail.com"))


SECTIONS: dict[str, type] = {
    "mailbox": MailboxConfig, "smtp": SmtpConfig, "storage": StorageConfig,
    "teams": TeamsConfig, "policy": PolicyConfig, "security": SecurityConfig,
    "sellers": SellersConfig, "digest": DigestConfig, "logging": LoggingConfig,
    "templates": TemplatesConfig, "oauth2": OAuth2Config,
}
REQUIRED_SECTIONS = ("mailbox", "smtp", "teams")
TEAM_NAMES = ("customer_service", "resolution", "customer_experience", "admins")


def _type_name(tp) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if typing.get_origin(tp) is list:
        return "a list of strings"
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return names.get(args[0], str(args[0]))
    return names.get(tp, str(tp))


def _check_type(key: str, value, tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")
        return list(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        shown = "(value hidden)" if any(w in key for w in ("password", "secret", "token")) else repr(value)
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {type(value).__name__} {shown}")
    return value


def _section(name: str, cls: type, raw: dict, unknown: list[str]):
    """One section; keys this version does not know go to `unknown` (a config written for a
    newer maildesk must still work after a rollback)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown += [f"{name}.{key}" for key in raw if key not in known]
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _check_type(f"{name}.{f.name}", raw[f.name], hints[f.name])
        elif f.default is REQUIRED:
            raise ConfigError(f"{name}.{f.name} is required but missing")
    return cls(**values)


def read_secret(section: str, obj, env: typing.Mapping[str, str]) -> str | None:
    """password, password_env or password_file: exactly one way, never logged."""
    given = [k for k in ("password", "password_env", "password_file") if getattr(obj, k)]
    if len(given) > 1:
        raise ConfigError(f"{section}: set only one of password, password_env, password_file")
    if obj.password_env:
        value = env.get(obj.password_env)
        if not value:
            raise ConfigError(f"{section}.password_env names {obj.password_env}, which is not set in the environment")
        return value
    if obj.password_file:
        try:
            return Path(obj.password_file).expanduser().read_text().strip()
        except OSError as e:
            raise ConfigError(f"{section}.password_file cannot be read: {e.strerror}") from None
    return obj.password


PLACEHOLDER_DOMAINS = ("example", "example.com", "example.net", "example.org")  # RFC 2606: nobody reads them


def _placeholder(addr: str) -> bool:
    domain = addr.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS)


def placeholders(cfg: Config) -> list[str]:
    """What `check` refuses although the config loads (the daemon runs with it): a level-1 team
    of nobody, and addresses left at the starter config's reserved example domains. One line
    per key."""
    problems = [] if cfg.teams.customer_service else [
        "teams.customer_service is empty: new complaints would notify nobody"]
    keys = [("mailbox.username", [cfg.mailbox.username]), ("smtp.from_address", [cfg.smtp.from_address]),
            *((f"teams.{team}", getattr(cfg.teams, team)) for team in TEAM_NAMES), ("digest.to", cfg.digest.to),
            ("[staff]", list(cfg.staff_names))]
    for key, addrs in keys:
        fake = [a for a in addrs if _placeholder(a)]
        if fake:
            problems.append(f"{key} holds {', '.join(fake)}: a placeholder (example domain), not a real "
                            "address; put the real one")
    return problems


def _validate(cfg: Config) -> None:
    for name, sec in (("mailbox", cfg.mailbox), ("smtp", cfg.smtp)):
        if sec.security not in ("ssl", "starttls", "none"):
            raise ConfigError(f'{name}.security must be "ssl", "starttls" or "none", got {sec.security!r}')
        if not 0 < sec.port < 65536:
            raise ConfigError(f"{name}.port must be between 1 and 65535, got {sec.port}")
    if not 1 <= cfg.smtp.connections <= 10:
        raise ConfigError(f"smtp.connections must be between 1 and 10, got {cfg.smtp.connections}")
    if cfg.smtp.saves_to_sent not in ("auto", "yes", "no"):
        raise ConfigError(f'smtp.saves_to_sent must be "auto", "yes" or "no", got {cfg.smtp.saves_to_sent!r}')
    if "@" not in cfg.smtp.from_address:
        raise ConfigError(f"smtp.from_address must be an e-mail address, got {cfg.smtp.from_address!r}")
    if cfg.mailbox.poll_seconds < 1:
        raise ConfigError("mailbox.poll_seconds must be at least 1")
    if cfg.security.staff_trust not in ("dmarc", "dkim", "spf-aligned"):
        raise ConfigError(f'security.staff_trust must be "dmarc", "dkim" or "spf-aligned", '
                          f'got {cfg.security.staff_trust!r}')
    if cfg.mailbox.first_start_hours < 0:
        raise ConfigError("mailbox.first_start_hours must be 0 (answer everything) or more")
    p = cfg.policy
    if not p.reference_prefix.isalnum() or not p.reference_prefix.isascii():
        raise ConfigError(f"policy.reference_prefix must be letters or digits, got {p.reference_prefix!r}")
    if p.language not in ("fr", "en"):
        raise ConfigError(f'policy.language must be "fr" or "en", got {p.language!r}')
    try:
        ZoneInfo(p.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"policy.timezone {p.timezone!r} is not a known time zone (e.g. \"Europe/Paris\")") from None
    if not p.escalate_to_resolution_hours < p.escalate_to_experience_hours:
        raise ConfigError("policy.escalate_to_experience_hours must be later than policy.escalate_to_resolution_hours")
    for key in ("escalate_to_resolution_hours", "findings_due_hours", "resolution_target_days",
                "update_every_hours", "satisfaction_wait_days"):
        if getattr(p, key) <= 0:
            raise ConfigError(f"policy.{key} must be more than 0")
    if cfg.logging.format not in ("text", "json"):
        raise ConfigError(f'logging.format must be "text" or "json", got {cfg.logging.format!r}')
    if cfg.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"logging.level must be DEBUG, INFO, WARNING or ERROR, got {cfg.logging.level!r}")
    hh, _, mm = cfg.digest.send_at.partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f'digest.send_at must be a time like "08:00", got {cfg.digest.send_at!r}')
    for team in TEAM_NAMES:
        for addr in getattr(cfg.teams, team):
            if "@" not in addr:
                raise ConfigError(f"teams.{team} holds {addr!r}, which is not an e-mail address")
    _check_recipients(cfg)
    for domain in cfg.teams.domains:
        _check_staff_domain(domain, cfg.support_domain)
    s = cfg.sellers
    for key in ("seller_response_hours", "window_days"):
        if getattr(s, key) <= 0:
            raise ConfigError(f"sellers.{key} must be more than 0")
    if s.flag_after < 0:
        raise ConfigError("sellers.flag_after must be 0 (never flag) or more")
    if s.webhook_url and not s.webhook_url.startswith(("http://", "https://")):
        raise ConfigError(f"sellers.webhook_url must start with http:// or https://, got {s.webhook_url!r}")
    if cfg.templates_dir is not None and not cfg.templates_dir.is_dir():
        key = "templates.dir" if cfg.templates.dir else "policy.templates"
        raise ConfigError(f"{key} {str(cfg.templates_dir)!r} is not a folder")


MAX_RECIPIENTS = 100  # Gmail takes at most 100 recipients in one mail


def _check_recipients(cfg: Config) -> None:
    """A team gets one mail with everyone in it: Gmail refuses more than 100 recipients, and a mail
    to more people than the daily limit lets go outside the reserve would wait for ever."""
    limit = cfg.smtp_daily_limit
    if limit and cfg.smtp.reserve >= limit:
        raise ConfigError(f"smtp.reserve ({cfg.smtp.reserve}) must be less than smtp.daily_limit ({limit})")
    lists = [(f"teams.{team}", getattr(cfg.teams, team)) for team in TEAM_NAMES] + [("digest.to", cfg.digest.to)]
    for key, people in lists:
        people = {a.lower() for a in people}
        if len(people) > MAX_RECIPIENTS:
            raise ConfigError(f"{key} has {len(people)} addresses; Gmail takes at most {MAX_RECIPIENTS} recipients "
                              "in one mail: use a group address (a Google Group) for a team that big")
        if limit and len(people) > limit - cfg.smtp.reserve:
            raise ConfigError(f"{key} has {len(people)} addresses, more than smtp.daily_limit - smtp.reserve "
                              f"({limit - cfg.smtp.reserve}) recipients a day: its mail could never go")


# mail services anyone can sign up to: as a staff domain, every customer writing from one would be
# taken for an unlisted colleague and never get an answer
PUBLIC_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "outlook.fr", "hotmail.com", "hotmail.fr", "live.com",
    "live.fr", "msn.com", "yahoo.com", "yahoo.fr", "icloud.com", "me.com", "aol.com", "gmx.com", "gmx.fr",
    "proton.me", "protonmail.com", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net", "bbox.fr"})


def _check_staff_domain(domain: str, support_domain: str) -> None:
    """teams.domains holds bare domain names of the organisation, never a public mail service."""
    labels = domain.split(".")
    if domain != domain.strip().lower() or "@" in domain or len(labels) < 2 or not all(
            label and all(ch.isalnum() or ch == "-" for ch in label) for label in labels):
        raise ConfigError(f'teams.domains holds {domain!r}, which is not a domain name in lower case '
                          f'(e.g. "{support_domain}")')
    if domain in PUBLIC_MAIL_DOMAINS:
        raise ConfigError(f"teams.domains holds {domain!r}, a public mail service: every customer writing from "
                          "it would be taken for an unlisted colleague; list staff on it by address instead")


def _staff(raw: dict, teams: TeamsConfig) -> tuple[dict[str, str], dict[str, str]]:
    staff: dict[str, str] = {}
    names: dict[str, str] = {}
    for team in TEAM_NAMES:
        for addr in getattr(teams, team):
            staff.setdefault(addr.lower(), team)
    if not isinstance(raw, dict):
        raise ConfigError("[staff] must be a table of people: name = { address = ..., team = ... }")
    for person, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise ConfigError(f"staff.{person} must be a table with an address")
        team = entry.get("team", "customer_service")
        unknown = set(entry) - {"address", "team", "name"}
        if unknown:
            raise ConfigError(f"staff.{person}.{sorted(unknown)[0]} is not a known setting (known: address, name, team)")
        if team not in TEAM_NAMES:
            raise ConfigError(f"staff.{person}.team must be one of {', '.join(TEAM_NAMES)}, got {team!r}")
        staff[entry["address"].lower()] = team
        names[entry["address"].lower()] = str(entry.get("name", person))
    return staff, names


def parse_config(data: dict, base_dir: Path, path: Path | None = None) -> Config:
    unknown = [f"[{key}]" for key in data if key not in SECTIONS and key != "staff"]
    for name in REQUIRED_SECTIONS:
        if name not in data:
            raise ConfigError(f"[{name}] is required but missing")
    built = {name: _section(name, cls, data.get(name, {}), unknown)
             for name, cls in SECTIONS.items() if name != "oauth2"}
    oauth2 = _section("oauth2", OAuth2Config, data["oauth2"], unknown) if "oauth2" in data else None
    staff, staff_names = _staff(data.get("staff", {}), built["teams"])
    cfg = Config(**built, oauth2=oauth2, staff=staff, staff_names=staff_names, base_dir=base_dir, path=path,
                 unknown=tuple(unknown))
    _validate(cfg)
    return cfg


def load(path: str | os.PathLike) -> Config:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (create one with `maildesk init`)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    return parse_config(data, path.resolve().parent, path.resolve())
