"""Checks over a whole parsed config: values that are each well typed but wrong
(a port out of range, a placeholder address, a public mail domain as a staff domain,
more recipients than Gmail takes), each reported as one sentence naming the key."""
from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maildesk.config.sections import DEFAULT_CATEGORIES, TEAM_NAMES, Config, ConfigError


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


def warnings(cfg: Config) -> list[str]:
    """What `check` warns about without failing: settings the law needs that are still empty."""
    m = cfg.mediation
    missing = [f"mediation.{key}" for key in ("name", "website", "address") if not getattr(m, key).strip()]
    if not missing:
        return []
    return [f"{', '.join(missing)} not set: customers left unsatisfied or past the resolution target must be "
            "told the consumer mediator's name and website (Code de la consommation L.612-1, L.616-1, "
            "R.616-1); fill in [mediation]"]


def validate(cfg: Config) -> None:
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
    _check_storage(cfg)
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
    if cfg.mediation.website and not cfg.mediation.website.startswith(("http://", "https://")):
        raise ConfigError(f"mediation.website must start with http:// or https://, got {cfg.mediation.website!r}")
    if not 1 <= cfg.attachments.max_message_mb <= 150:
        raise ConfigError(f"attachments.max_message_mb must be between 1 and 150, got {cfg.attachments.max_message_mb}")
    for ext in cfg.attachments.blocked_extensions:
        if not (isinstance(ext, str) and ext.startswith(".") and len(ext) > 1 and "/" not in ext):
            raise ConfigError(f'attachments.blocked_extensions holds {ext!r}: write each as ".exe"')
    for key in ("anonymise_after_days", "sellers_after_days"):
        if getattr(cfg.retention, key) < 30:
            raise ConfigError(f"retention.{key} must be at least 30 (days), got {getattr(cfg.retention, key)}")
    if not 1 <= cfg.retention.batch_size <= 10000:
        raise ConfigError(f"retention.batch_size must be between 1 and 10000, got {cfg.retention.batch_size}")
    hh, _, mm = cfg.retention.scrub_at.partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f'retention.scrub_at must be a time like "03:30", got {cfg.retention.scrub_at!r}')
    if cfg.templates_dir is not None and not cfg.templates_dir.is_dir():
        key = "templates.dir" if cfg.templates.dir else "policy.templates"
        raise ConfigError(f"{key} {str(cfg.templates_dir)!r} is not a folder")


MAX_RECIPIENTS = 100  # Gmail takes at most 100 recipients in one mail


def _check_storage(cfg: Config) -> None:
    s = cfg.storage
    if s.url is None:
        if s.password_env or s.password_file:
            raise ConfigError("storage.password_env and storage.password_file are for PostgreSQL: set storage.url too")
        return
    parts = urlsplit(s.url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise ConfigError("storage.url must look like postgresql://USER@HOST:PORT/DATABASE, got "
                          f"{s.url.split('@')[-1]!r}")
    if parts.password is not None:
        raise ConfigError("storage.url holds a password: remove it and put it in storage.password_env "
                          "or storage.password_file")
    if not 3 <= s.takeover_seconds <= 600:
        raise ConfigError(f"storage.takeover_seconds must be between 3 and 600, got {s.takeover_seconds}")


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




def categories(raw) -> dict[str, tuple[str, ...]]:
    """[categories]: category name = [keywords]; the shipped ones when the table is absent.
    "autre" is always a category (what matches nothing)."""
    if raw is None:
        return dict(DEFAULT_CATEGORIES)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError('[categories] must be a table of category = ["keyword", ...] '
                          '(leave it out for the shipped categories)')
    out: dict[str, tuple[str, ...]] = {}
    for name, keywords in raw.items():
        if not name.strip() or "\n" in name or len(name) > 60:
            raise ConfigError(f"categories.{name!r}: a category name is one line of at most 60 characters")
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
            raise ConfigError(f'categories.{name} must be a list of keywords, e.g. ["remboursement", "refund"], '
                              f"got {keywords!r}")
        out[name.strip()] = tuple(keywords)
    out.setdefault("autre", ())
    return out
