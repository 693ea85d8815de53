"""Status by mail (issue 18 item 5): a customer who writes only "statut", "status" or
"où en est ma réclamation ?" on their complaint gets where it stands, and nothing else moves.

`is_status_request` reads the reply text (quotes already stripped): after a greeting, one of the
questions below, and at most a closing ("merci", "cordialement") with a name. Anything longer or
with other words is news for the team, handled as today: a customer who writes "le statut de ma
commande dit livré mais je n'ai rien reçu" must reach a person. Vaguer nudges ("des nouvelles ?",
"any news?") stay news for the team too: a person answers those.

`answer` is the decision: one mail to the customer, one event on the timeline, no change to the
complaint (no reopening, no clock touched: `last_customer_update_at` stays, since the customer
asked rather than being updated; the team is not notified).
"""
from __future__ import annotations

import re
from datetime import datetime

from maildesk.core import deadlines
from maildesk.core.policy import Complaint, Decision, Mail, plain

MAX_CHARS = 120  # what is left after the signature: a status question is short

_DOC = r"(?:reclamation|demande|plainte|dossier|requete|complaint|claim|request|case|ticket)"
_MINE = r"(?:ma|mon|la|le|my|the)"
_ASK = (
    r"(?:(?:le|quel est le|quel est l'|what is the|what's the|whats the)\s*)?"
    r"(?:statut|status|etat)(?:\s+(?:de|of|du)\s+" + _MINE + r"\s+" + _DOC + r")?"
    r"|status update"
    r"|ou en (?:est|sont) (?:ma|mon|la|le|mes) " + _DOC + r"s?"
    r"|ou en est on|ou en etes vous|ou en sommes nous"
    r"|where (?:is|are) (?:my|we with my) " + _DOC + r"(?: at)?"
    r"|where do(?:es)? (?:my " + _DOC + r"|things) stand")
_GREETING = r"(?:bonjour|bonsoir|hello|hi|salut|madame|monsieur|dear (?:sir|madam|team))"
_PLEASE = r"(?:svp|s'il vous plait|s'il vous plaît|please|stp)"
_CLOSING = r"(?:merci(?: beaucoup| d'avance)?|thanks?(?: you)?(?: in advance)?|cordialement|regards|best regards|bien a vous)"
_WHOLE = re.compile(
    r"(?:" + _GREETING + r"\s+)?(?:" + _ASK + r")(?:\s+" + _PLEASE + r")?"
    r"(?:\s+" + _CLOSING + r"(?:\s+\w+){0,3})?")
_SIGNATURE = re.compile(r"^(?:envoye de mon|sent from my|get outlook for)\b")
_PUNCTUATION = re.compile(r"[?!.,;:()\[\]\"«»\-–—_*/]+")


def _core_text(text: str) -> str:
    """The words of the reply, folded (no accents, lower case), without signature or punctuation."""
    lines = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        if line.rstrip() in ("--", "-- "):
            break  # the signature delimiter
        folded = plain(line.strip())
        if folded and not _SIGNATURE.match(folded):
            lines.append(folded)
    return " ".join(_PUNCTUATION.sub(" ", " ".join(lines)).split())


def is_status_request(text: str) -> bool:
    """Whether the message only asks where the complaint stands (French or English)."""
    words = _core_text(text)
    return bool(words) and len(words) <= MAX_CHARS and _WHOLE.fullmatch(words) is not None


def answer(c: Complaint, now: datetime, cfg) -> Decision:
    """The customer's status mail: level, what is happening, the next deadline. Changes nothing."""
    d = Decision()
    upcoming = deadlines.applying(c.first_contact, c.level, now, cfg) if c.status in ("open", "waiting_customer") \
        else None
    d.mails.append(Mail("status", (c.customer_addr,), "status", "customer",
                        context={"level": c.level, "next_deadline": upcoming.due if upcoming else None,
                                 "next_deadline_name": upcoming.name if upcoming else None}))
    d.event("status_requested", level=c.level, status=c.status,
            next_deadline=upcoming.due.isoformat() if upcoming else None)
    return d
