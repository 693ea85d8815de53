"""The settings as frozen dataclasses, one per section of maildesk.toml, with their
defaults: what the rest of maildesk reads, already checked."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo


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
    url: str | None = None  # postgresql://USER@HOST:PORT/DB selects PostgreSQL instead of `database`
    password_env: str | None = None  # PostgreSQL's password: from this environment variable ...
    password_file: str | None = None  # ... or from this file; never in the url
    takeover_seconds: float = 15  # PostgreSQL: a standby daemon takes over this long after the active one died


# Gmail refuses these file types, also inside an archive (support.google.com/mail/answer/6590)
GMAIL_BLOCKED = (".ade", ".adp", ".apk", ".appx", ".appxbundle", ".bat", ".cab", ".chm", ".cmd", ".com", ".cpl",
                 ".diagcab", ".diagcfg", ".diagpkg", ".dll", ".dmg", ".ex", ".ex_", ".exe", ".hta", ".img", ".ins",
                 ".iso", ".isp", ".jar", ".jnlp", ".js", ".jse", ".lib", ".lnk", ".mde", ".mjs", ".msc", ".msi",
                 ".msix", ".msixbundle", ".msp", ".mst", ".nsh", ".pif", ".ps1", ".scr", ".sct", ".shb", ".sys",
                 ".vb", ".vbe", ".vbs", ".vhd", ".vxd", ".wsc", ".wsf", ".wsh", ".xll")


@dataclass(frozen=True)
class AttachmentsConfig:
    """What the sending server refuses, known before a mail is queued (Gmail's values): a mail
    never carries more than `max_message_mb` in all (after base64) nor a blocked file type; what
    does not go is kept and listed in the mail by name and size."""
    max_message_mb: float = 25.0
    blocked_extensions: list[str] = field(default_factory=lambda: list(GMAIL_BLOCKED))


@dataclass(frozen=True)
class RetentionConfig:
    """Personal data anonymised by the clock (core/retention.py; docs/privacy.md cites the CNIL's
    reference): complaints closed and quiet for `anonymise_after_days`, terminated sellers quiet for
    `sellers_after_days`, at most `batch_size` a sweep so the daemon never waits on it; the file's
    bytes are rewritten (VACUUM) once a day after `scrub_at`, not after each batch (service/retention.py)."""
    enabled: bool = True
    anonymise_after_days: float = 1095
    sellers_after_days: float = 1095
    batch_size: int = 200
    scrub_at: str = "03:30"  # local time: once a day after it, the file is vacuumed if the clock anonymised anything


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
    keep_customer_cc: bool = True  # the addresses a customer put in Cc are copied on customer-facing mail
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


# [categories]: each category's keywords, French and English (core/categories.py matches them as whole
# words, accents and case ignored). A [categories] table in the config replaces these; "autre" is
# always a category, for what matches nothing.
DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "colis non reçu": ("colis non reçu", "pas reçu", "jamais reçu", "toujours pas reçu", "jamais arrivé",
                       "jamais arrivée", "pas arrivé", "pas arrivée", "pas livré", "non livré", "colis perdu",
                       "not received", "never received", "never arrived", "not arrived", "not delivered",
                       "lost parcel", "lost package", "where is my order"),
    "article endommagé": ("endommagé", "endommagée", "abîmé", "abîmée", "cassé", "cassée", "brisé", "rayé",
                          "défectueux", "défectueuse", "damaged", "broken", "cracked", "scratched", "defective"),
    "non conforme": ("non conforme", "pas conforme", "mauvais article", "mauvaise taille", "mauvaise couleur",
                     "ne correspond pas", "pas ce que j'ai commandé", "wrong item", "wrong size", "wrong colour",
                     "wrong color", "not as described", "does not match", "not what i ordered"),
    "remboursement": ("remboursement", "rembourser", "remboursé", "remboursée", "remboursez", "refund",
                      "refunded", "reimburse", "money back"),
    "retour": ("retour", "retourner", "renvoyer", "rétractation", "étiquette de retour", "return", "returned",
               "returning", "send back", "send it back", "return label"),
    "paiement": ("paiement", "payé", "prélèvement", "prélevé", "débité", "débitée", "deux fois", "carte bancaire",
                 "facture", "payment", "paid", "charged", "charged twice", "invoice", "billing"),
    "vendeur injoignable": ("vendeur injoignable", "injoignable", "vendeur ne répond pas", "vendeur ne répond",
                            "pas de réponse du vendeur", "aucune réponse du vendeur", "seller not responding",
                            "seller does not answer", "seller does not reply", "no answer from the seller",
                            "unreachable", "seller unreachable"),
    "autre": (),
}


@dataclass(frozen=True)
class MediationConfig:
    """The consumer mediator (Code de la consommation L.612-1, L.616-1, R.616-1), named to customers
    left unsatisfied or past the resolution target; empty until filled in (`check` warns)."""
    name: str = ""
    website: str = ""
    address: str = ""  # postal address

    @property
    def configured(self) -> bool:
        return bool(self.name.strip() and self.website.strip())


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
    categories: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    mediation: MediationConfig = field(default_factory=MediationConfig)
    attachments: AttachmentsConfig = field(default_factory=AttachmentsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)

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
    "templates": TemplatesConfig, "oauth2": OAuth2Config, "mediation": MediationConfig,
    "attachments": AttachmentsConfig, "retention": RetentionConfig,
}
REQUIRED_SECTIONS = ("mailbox", "smtp", "teams")
TEAM_NAMES = ("customer_service", "resolution", "customer_experience", "admins")


