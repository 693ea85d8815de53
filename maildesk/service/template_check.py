"""Render every template once, in every language, before any mail needs it.

`maildesk run` and `once` stop on the first problem with one line naming the
file (exit 2), and `maildesk check` reports it, instead of the daemon looping
on `TemplateNotFound` for every mail. The contexts below are what the callers
pass (policy.py, sellers.py, seller_desk.py, seller_sanctions.py, workflow.py,
digest.py), with representative values, so a misspelt variable fails here too.
A template that breaks only on some data is still caught per mail (the outbox
and the sweep set that one item aside).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jinja2

from maildesk.service import digest
from maildesk.core import commands, policy
from maildesk.store.db import Store
from maildesk.outbound.templates import Templates

LANGUAGES = ("fr", "en")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
SELLER = {"id": "S-1042", "shop_name": "Boutique Lumière", "address": "contact@boutique-lumiere.example",
          "phone": "01 23 45 67 89", "status": "active"}

# A refused staff mail, as trust.refusal and Workflow._suspicious describe it: every failed check.
_REFUSED = {"claimed": "alice@imolocale.example", "why": "DMARC fail", "ref": "IMO-4K7M2Q", "listed": True,
            "original_subject": "#resolve", "domain": "imolocale.example",
            "signer": "imolocale-example.20230601.gappssmtp.com", "authserv_id": "mx.google.com",
            "checks": ["no_results", "dmarc_fail", "no_dmarc", "dkim_not_started", "no_dkim", "unverified"]}

# What service/mail_files.py lists of a mail's files: one in each state a template words.
FILES = [{"number": n, "filename": name, "type": "image/jpeg", "size": "40 Ko", "state": state, "detail": detail,
          "problem": problem}
         for n, (name, state, detail, problem) in enumerate([
             ("colis.jpg", "attached", "", None), ("setup.exe", "blocked", "setup.exe", None),
             ("photos.zip", "unreadable", "password-protected archive inside", None),
             ("video.mov", "too_big", "", None), ("p5.jpg", "no_room", "", None),
             ("colis.heic", "withheld", "image metadata cannot be removed (HEIF)", None),
             ("scan.pdf", "not_kept", "", "empty file")], start=1)]

REFUSED_FILES = [{"filename": "setup.exe", "reason": "blocked", "detail": "setup.exe"},
                 {"filename": "photos.zip", "reason": "unreadable", "detail": "password-protected archive inside"}]
HELD_FILES = [{"filename": f["filename"], "reason": f["state"], "detail": f["detail"]}
              for f in FILES if f["state"] != "attached"]

# Every mail template and what its callers add to the complaint's context.
MAILS: dict[str, dict] = {
    "ack": {"contact_request": False, "refused": REFUSED_FILES},
    "files_held": {"refused": REFUSED_FILES},
    "staff_files_held": {"held": HELD_FILES, "to_customer": "relay"},
    "staff_assigned": {"by": "alice@imolocale.example"},
    "staff_new": {"seller_hint": "Boutique Lumière (S-1042)", "contact_request": True},
    "staff_reply": {"party": "partenaire@example.fr"},  # a party's message (parties.py); the customer's: no party
    "thanks_rating": {"satisfied": False, "mediation": True},  # the unsatisfied one names the mediator
    "mediation": {"due": NOW - timedelta(hours=1)},  # the resolution target missed
    "staff_dissatisfied": {"score": 1, "level": 3},
    "resolution": {"note": "Remboursement effectué."},
    "relay": {"text": "Nous avons relancé le transporteur.", "ask": True, "staff_name": "Alice"},
    "escalated_2": {"level": 2, "manual": False},
    "escalated_3": {"level": 3, "manual": True},
    "staff_escalated": {"level": 2, "manual": True, "by": "alice@imolocale.example"},
    "staff_findings_reminder": {"due": NOW + timedelta(hours=48)},
    "staff_target": {"missed": True, "due": NOW + timedelta(days=5)},
    "update": {"level": 2},
    "status": {"level": 2, "next_deadline": NOW + timedelta(hours=18), "next_deadline_name": "48h"},
    "satisfaction_reminder": {},
    "seller_contact_details": {"seller": SELLER},
    "seller_contact_pending": {"linked": True},
    "staff_seller_contact_request": {"seller": SELLER, "text": "Je veux les coordonnées du vendeur.",
                                     "repeat": False, "failed": False},
    "staff_seller_reply": {"seller": SELLER, "late": True, "text": "Colis renvoyé ce matin."},
    "staff_seller_unthreaded": {"seller": SELLER, "claimed": ["IMO-4K7M2Q"], "original_subject": "Commande",
                                "text": "Bonjour, de quelle commande s'agit-il ?"},
    "staff_command_error": {"errors": ["#level 7: levels are 1, 2 and 3"], "commands": commands.help_text(),
                            "original_subject": "Colis jamais reçu"},
    "seller_outreach": {"seller": SELLER, "facts": "Commande 784512, colis jamais reçu.",
                        "due": NOW + timedelta(hours=48), "hours": 48.0, "followup": False},
    "seller_reminder": {"seller": SELLER, "due": NOW + timedelta(hours=48)},
    "staff_evidence_withheld": {"seller": SELLER, "withheld": [
        {"number": 2, "filename": "IMG_0042.HEIC", "size": 2_400_000, "why": "HEIC/HEIF photo: its metadata "
         "(GPS position, camera owner) cannot be removed here"}]},
    "staff_seller_failed": {"seller": SELLER, "reason": "deadline", "disclosed": True},
    "admin_seller_flagged": {"seller": SELLER, "count": 3, "window_days": 90.0, "flag_after": 3,
                             "strikes": [{"at": NOW.isoformat(), "kind": "late", "ref": "IMO-4K7M2Q",
                                          "reason": None}]},
    "seller_decision": {"seller": SELLER, "decision": "restrict", "reason": "trop de plaintes"},
    # coalesced notices (notices.py): the latest occurrence, how many, since when, the earlier ones
    "admin_flood": {"address": "robot@example.com", "opened": 12, "cap": 5, "original_subject": "Ticket 12",
                    "ref": "IMO-4K7M2Q", "count": 2, "since": NOW,
                    "earlier": [{"at": NOW, "address": "robot@example.com", "opened": 6, "ref": "IMO-4K7M2Q"}]},
    "admin_suspicious": {**_REFUSED, "count": 2, "since": NOW,
                         "earlier": [{"at": NOW, "claimed": "alice@imolocale.example", "why": "DMARC fail",
                                      "ref": "IMO-4K7M2Q", "original_subject": "#resolve"}]},
    "staff_unlisted": {"address": "paul@imolocale.example", "admins": ["admin@imolocale.example"],
                       "original_subject": "Re: [IMO-4K7M2Q] Colis", "ref": "IMO-4K7M2Q"},
    "staff_refused": {**_REFUSED, "count": 2, "since": NOW,
                      "earlier": [{"at": NOW, "original_subject": "#resolve", "ref": "IMO-4K7M2Q"}]},
    "staff_flood": {"address": "robot@example.com", "opened": 12, "cap": 5, "original_subject": "Ticket 12",
                    "ref": "IMO-4K7M2Q", "count": 2, "since": NOW,
                    "earlier": [{"at": NOW, "ref": "IMO-4K7M2Q", "original_subject": "Ticket 11"}]},
    "admin_mailbox": {"title": "Un message que Gmail ne sert pas", "what": "UID 812 refusé trois fois.",
                      "fix": "l'ouvrir dans Gmail, puis le déplacer ou le supprimer"},
    "staff_canned_list": {"asked": "photo", "answers": {"photos": "Demande de photos"}, "problem": "x.txt: oops",
                          "dropped_text": True, "customer_lang": "fr"},
    "merged": {"source": "IMO-7Q2WRT", "target": "IMO-4K7M2Q", "note": "Nous regroupons vos deux demandes."},
    "staff_merge": {"merged": True, "source": "IMO-7Q2WRT", "target": "IMO-4K7M2Q", "reason": "",
                    "line": "IMO-7Q2WRT merged into IMO-4K7M2Q: 2 message(s) moved", "dropped_text": False,
                    "notes": ["IMO-7Q2WRT was closed: its history joins the open IMO-4K7M2Q"],
                    "original_subject": "Re: [IMO-7Q2WRT] Colis"},
    "digest": {},  # its context is built from an empty database below
    # the dossier (service/dossier.py): the short mail, and the record as HTML
    "dossier": {"customer_count": 1, "entries": [
        {"at": NOW - timedelta(hours=30), "who": "customer", "subject": "Colis jamais reçu",
         "text": "Bonjour, ma commande n'est jamais arrivée.", "attachments": ["suivi.pdf"]},
        {"at": NOW - timedelta(hours=30), "who": "step", "step": "opened", "level": None, "score": None},
        {"at": NOW - timedelta(hours=6), "who": "step", "step": "escalated", "level": 2, "score": None},
        {"at": NOW - timedelta(hours=29), "who": "us", "subject": "[IMO-4K7M2Q] Colis jamais reçu",
         "text": "Nous avons bien reçu votre réclamation.", "attachments": []}]},
}
HTML = ("digest", "dossier")  # the mails that also have an HTML version
FRAGMENTS = {"staff_seller_hint": {"seller": SELLER, "status": "restricted", "status_at": NOW,
                                   "status_reason": "trop de plaintes"}}  # one line inside other text


def _complaint_context(cfg) -> dict:
    """What Workflow._context gives a complaint's mails."""
    first = NOW - timedelta(hours=30)
    complaint = {"id": 1, "ref": "IMO-4K7M2Q", "customer_addr": "camille@example.fr",
                 "customer_name": "Camille Martin", "subject": "Colis jamais reçu", "lang": "fr",
                 "order_number": "784512", "seller_id": "S-1042", "level": 2, "status": "open", "owner": None,
                 "category": "colis non reçu", "first_contact": first, "opened_at": first, "acked_at": first,
                 "next_due": NOW}
    latest = {"direction": "in", "kind": "customer", "at": NOW - timedelta(hours=1),
              "from_addr": "camille@example.fr", "subject": "Re: Colis", "reply_text": "Toujours rien.",
              "body": "Toujours rien.\n\n> Bonjour"}
    earlier = {**latest, "direction": "out", "kind": "customer:ack", "at": first, "reply_text": None,
               "body": "Nous avons bien reçu votre réclamation."}
    return {"now": NOW, "cfg": cfg, "support_address": cfg.smtp.from_address, "brand": cfg.smtp.from_name,
            "complaint": complaint, "ref": complaint["ref"], "tag": f"[{complaint['ref']}]",
            "subject": complaint["subject"], "level": complaint["level"],
            "deadlines": policy.deadlines(first, cfg), "history": [latest, earlier], "latest": latest,
            "first_message": {"reply_text": "Bonjour, ma commande n'est jamais arrivée.", "body": ""},
            "staff_name": None, "files": FILES,
            "cc": ("partenaire@example.fr",)}  # the customer's Cc (issue 16)


def _digest_context(cfg, lang: str) -> dict:
    store = Store(":memory:")
    try:
        doc = digest.build(store, cfg, NOW)
        doc["retention"] = {"enabled": True, "complaints": 12, "sellers": 1, "mail_removed": 340, "after_days": 1095.0,
                            "next_due": NOW + timedelta(hours=5), "due_now": False}  # an empty database has none
    finally:
        store.close()
    return {"now": NOW, "cfg": cfg, **digest.context(doc, cfg, lang)}


def _where(templates: Templates, name: str) -> str:
    try:
        return templates.env.get_template(name).filename or name
    except jinja2.TemplateError:
        return name


def _describe(templates: Templates, name: str, error: Exception) -> str:
    if isinstance(error, jinja2.TemplateNotFound):
        looked = " and ".join(str(d) for d in templates.search_path)
        return f"template {error.name or name} is missing (looked in {looked})"
    if isinstance(error, jinja2.TemplateSyntaxError):
        where = error.filename or _where(templates, error.name or name)
        return f"template {where} line {error.lineno}: {error.message}"
    text = " ".join(str(error).split())[:200]
    return f"template {_where(templates, name)}: {type(error).__name__}: {text}"


def problems(templates: Templates, cfg) -> list[str]:
    """One line per template that is missing or does not render; [] when all are well."""
    found = []
    base = _complaint_context(cfg)
    for lang in LANGUAGES:
        for name, extra in MAILS.items():
            context = _digest_context(cfg, lang) if name == "digest" else {**base, **extra}
            for ext in ("txt", *(("html",) if name in HTML else ())):
                path = f"{lang}/{name}.{ext}"
                try:
                    text = templates.env.get_template(path).render(lang=lang, **context)
                    if ext == "txt" and not text.startswith("Subject:"):
                        raise ValueError("must start with a 'Subject:' line")
                except Exception as e:  # every problem becomes one line naming the file
                    found.append(_describe(templates, path, e))
        canned = {**base, "seller": SELLER, "next_deadline": NOW + timedelta(hours=18)}  # canned.py's context
        for path in templates.canned_files(lang):
            try:
                templates.render_canned(path, lang, **canned)
            except Exception as e:  # as below
                found.append(_describe(templates, f"canned/{lang}/{path.name}", e))
        for name, context in FRAGMENTS.items():
            path = f"{lang}/{name}.txt"
            try:
                templates.env.get_template(path).render(lang=lang, **context)
            except Exception as e:  # as above
                found.append(_describe(templates, path, e))
    return found


def count() -> int:
    """How many files `problems` renders."""
    return len(LANGUAGES) * (len(MAILS) + len(HTML) + len(FRAGMENTS))
