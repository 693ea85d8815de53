"""Who sent a mail and what kind of mail it is: robot, staff, seller, unlisted
colleague or customer; and the one place that says whether a mail is automatic, and why.

Robots come first: an out-of-office from a staff member is still a robot,
and a robot never gets an automatic answer (no mail loops, RFC 3834).
A colleague writing from a staff domain ([teams] domains) whose address is
not listed is never a customer: her mail is kept and obeys nothing.
Pure: plain values in (decoded headers, addresses, subject), reasons out.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from maildesk.config import Config

ROBOT, STAFF, SELLER, UNLISTED, CUSTOMER = "robot", "staff", "seller", "unlisted", "customer"


@dataclass(frozen=True)
class Sender:
    role: str
    reason: str = ""  # why a robot


class Mail(Protocol):
    """What classify() reads of a parsed mail (an inbound.parse.InboundMail): the core
    does not import the parser, the parser asks the core about robots."""

    @property
    def from_addr(self) -> str: ...

    @property
    def auto_reason(self) -> str | None: ...


def classify(mail: Mail, cfg: Config, seller_addresses: frozenset[str] = frozenset()) -> Sender:
    if mail.from_addr == cfg.support_address:
        return Sender(ROBOT, "sent from our own address")
    if mail.auto_reason:
        return Sender(ROBOT, mail.auto_reason)
    if mail.from_addr in cfg.staff:
        return Sender(STAFF)
    if mail.from_addr in seller_addresses:
        return Sender(SELLER)
    if cfg.staff_domain(mail.from_addr):
        return Sender(UNLISTED)
    return Sender(CUSTOMER)


# --- automatic mail: every signal one a person's mail client does not add

_DAEMON_LOCALS = {"mailerdaemon": "mailer-daemon", "maildaemon": "mailer-daemon", "postmaster": "postmaster"}
_NOREPLY = re.compile(r"^(?:no|do[-_.]?not|ne[-_.]?pas)[-_.]?r[ée]p?ly|^(?:no|do[-_.]?not|ne[-_.]?pas)[-_.]?r[ée]pondre|no[-_.]?reply$")
_SUBJECT_AUTO = re.compile(
    r"^\s*(?:automatic reply|r[ée]ponse automatique|auto[- ]?reply|auto[- ]?response|"
    r"out of office auto ?reply|automatische antwort|respuesta autom[áa]tica|risposta automatica)\s*:",
    re.I,
)
_SUBJECT_OOF = re.compile(r"^\s*(?:auto\s*:|out of (?:the )?office|absence|absent|cong[ée]s|vacation)", re.I)
_LIST_HEADERS = ("x-mailman-version", "x-mlserver", "x-ml-name", "x-beenthere", "x-ezmlm-version")
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply")


def _first(h: Mapping[str, list[str]], name: str) -> str | None:
    values = h.get(name)
    return values[0] if values else None


def auto_reason(h: Mapping[str, list[str]], from_addr: str, subject: str, report: str | None) -> str | None:
    """Why a mail is machine-generated, strongest evidence first; None for a person.

    Every signal here is one a person's mail client does not add.  Subjects
    are only trusted when they are a client-generated prefix with a colon
    ("Automatic reply:", "Réponse automatique :"); "Absence ..." or "Out of
    office" is a plausible human subject (French "absence de remboursement")
    and only counts with X-Auto-Response-Suppress, which Outlook puts on
    ordinary mail too and so never counts alone.

    ``h`` maps lower-cased header names to their decoded values, which the
    parser has already freed of control characters; ``report`` is the kind of
    report the MIME tree holds (see :func:`report_kind`), if any.
    """
    if report:
        return report
    if "x-failed-recipients" in h:
        return "delivery-report"
    value = _first(h, "auto-submitted")
    if value is not None:
        token = value.split(";", 1)[0].strip().lower()
        if token and token != "no":
            return "auto-submitted: " + " ".join(token.split())[:40]
    for name in _AUTOREPLY_HEADERS:
        value = _first(h, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return name
    value = _first(h, "precedence")
    if value is not None:
        token = value.strip().lower()
        if token in ("bulk", "junk", "list", "auto_reply", "auto-reply"):
            return "precedence: " + token
    if "list-id" in h:
        return "list-id"
    if "list-unsubscribe" in h:
        return "list-unsubscribe"
    for name in _LIST_HEADERS:
        if name in h:
            return "mailing-list: " + name
    value = _first(h, "return-path")
    if value is not None and "".join(value.split()) == "<>":
        return "return-path: <>"
    local = from_addr.partition("@")[0]
    squashed = re.sub(r"[-_.]", "", local)
    if squashed in _DAEMON_LOCALS:
        return "sender: " + _DAEMON_LOCALS[squashed]
    if _NOREPLY.search(local):
        return "sender: no-reply"
    if _SUBJECT_AUTO.match(subject):
        return "subject: automatic reply"
    if _SUBJECT_OOF.match(subject) and "x-auto-response-suppress" in h:
        return "subject: out of office"
    return None


_FEEDBACK_TYPE = re.compile(r"[a-z][a-z0-9-]{0,30}")
# Hotmail/Outlook JMRP: "complaint about message from 203.0.113.5", the original attached.
_JMRP_SUBJECT = re.compile(r"\s*complaint about message from\b", re.I)
_REPORT_TYPES = (
    ("delivery-status", "delivery-report"),
    ("feedback-report", "feedback-report"),
    ("disposition-notification", "disposition-notification"),
)


def feedback_type(value: str | None) -> str:
    """RFC 5965 Feedback-Type (abuse, fraud, virus, not-spam, other), "other" when unreadable."""
    m = _FEEDBACK_TYPE.match(value.strip().lower()) if value else None
    return m.group(0) if m else "other"


def hotmail_complaint(subject: str, attaches_a_message: bool) -> str | None:
    """Hotmail's JMRP complaints carry no report part: its subject and the attached original
    are the only signs. "abuse" when both are there."""
    return "abuse" if attaches_a_message and _JMRP_SUBJECT.match(subject) else None


def report_kind(part_report: str | None, feedback: str | None, content_type: str | None) -> str | None:
    """What kind of report a mail is: the report part found in its MIME tree first, then an
    abuse complaint, then a top-level multipart/report by its report-type (any report at all
    when the report-type is missing or unknown); None for a mail that reports nothing."""
    if part_report:
        return part_report
    if feedback:
        return "feedback-report"
    ctype = (content_type or "").lower()
    if not ctype.lstrip().startswith("multipart/report"):
        return None
    return next((kind for marker, kind in _REPORT_TYPES if marker in ctype), "report")
