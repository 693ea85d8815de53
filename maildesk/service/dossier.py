"""The dossier: a dated record of one written complaint (reference, date of first contact, the
customer's messages, what was done and when), the proof a consumer mediator asks for (Code de la
consommation L.612-2: a written complaint made to the professional first). One self-contained HTML
page (templates/<lang>/dossier.html, every value escaped by Jinja's autoescape) that `maildesk
dossier REF --out FILE.html` writes and `#dossier` sends the customer as an attachment of a short
mail (dossier.txt). Staff notes and staff-only mail are never in it."""
from __future__ import annotations

import json
from datetime import datetime

from maildesk.outbound.compose import Attachment
from maildesk.store import dossier as queries
from maildesk.store.db import from_iso


def record(store, complaint_id: int) -> dict:
    """The dossier's part of a template context: `entries`, oldest first, each with `at`, `who`
    ("customer", "us" or "step"), and `subject`/`text`/`attachments` or `step`/`detail`."""
    entries = []
    customer = queries.customer_messages(store, complaint_id)
    names = queries.attachment_names(store, [m["id"] for m in customer])
    for m in customer:
        entries.append({"at": from_iso(m["at"]), "who": "customer", "subject": m["subject"] or "",
                        "text": (m["reply_text"] or m["body"] or "").strip(), "attachments": names.get(m["id"], [])})
    for m in queries.mails_to_customer(store, complaint_id):
        entries.append({"at": from_iso(m["at"]), "who": "us", "subject": m["subject"] or "",
                        "text": (m["body"] or "").strip(), "attachments": []})
    for e in queries.steps(store, complaint_id):
        detail = json.loads(e["detail"] or "{}")
        entries.append({"at": from_iso(e["at"]), "who": "step", "step": e["kind"],
                        "level": detail.get("level"), "score": detail.get("score")})
    order = {"customer": 0, "step": 1, "us": 2}  # at one moment: what came in, what we did, what we wrote
    entries.sort(key=lambda x: (x["at"], order[x["who"]]))
    return {"entries": entries, "customer_count": len(customer)}


def filename(ref: str) -> str:
    return f"dossier-{ref}.html"


def attachment(ref: str, html: str) -> Attachment:
    return Attachment(filename(ref), "text/html", html.encode("utf-8"))


def render(workflow, ref: str, now: datetime, lang: str | None = None) -> str | None:
    """The dossier of complaint `ref` as an HTML page, in the customer's language (or `lang`); None
    when there is no such complaint."""
    row = workflow.store.complaint(ref)
    if row is None:
        return None
    context = workflow.context(row, now)
    context.update(record(workflow.store, row["id"]))
    return workflow.templates.render("dossier", lang or row["lang"], **context).html
