"""The stored files an outgoing mail carries (`Mail.carry`), chosen and packed before it is queued:
what the sending server would refuse (`core/file_rules.py`) stays stored and is listed in the mail
by name and size with how to get it, so a mail is never refused for its files. For a seller the
customer's files are cleaned first (`outbound/evidence.py`)."""
from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email import policy as email_policy

from maildesk.config import Config
from maildesk.core import file_rules, sellers
from maildesk.core.file_rules import Candidate, Held
from maildesk.inbound import archives
from maildesk.logs import event as log_event
from maildesk.outbound import evidence
from maildesk.outbound.compose import Attachment
from maildesk.store import files
from maildesk.store.db import Store
from maildesk.store.files import StoredFile

# the messages whose files a team new to the complaint is shown: people's mail, not robots'
SHOWN_SOURCES = ("customer", "staff", "note", "seller", "party")
SIGNATURE_IMAGE_MAX = 64 * 1024  # an inline image this small in a staff mail is a signature's logo


@dataclass
class Carried:
    """`attached` go with the mail; `listing` (for the template: one dict per file) says of each
    file whether it is attached or why not; `held` the files that stayed, with their reason."""
    attached: list[tuple[StoredFile, Attachment]] = field(default_factory=list)
    listing: list[dict] = field(default_factory=list)
    held: list[tuple[StoredFile, Held]] = field(default_factory=list)

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(att for _, att in self.attached)

    def drop_last(self) -> None:
        """The mail came out over the limit after all (the estimate was short): its last attached
        file stays behind too, listed as not attached for lack of room."""
        f, _ = self.attached.pop()
        self.held.append((f, Held(f.id, "no_room")))
        for item in self.listing:
            if item["number"] == f.number:
                item["state"] = "no_room"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} o"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} Ko"
    return f"{size / (1024 * 1024):.1f} Mo"


CID = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)


def shown_cids(raw: bytes | None) -> set[str]:
    """The Content-IDs the message's HTML shows (`<img src="cid:...">`), without angle brackets."""
    if not raw:
        return set()
    try:
        msg = email.message_from_bytes(raw, policy=email_policy.default)
        found: set[str] = set()
        for part in msg.walk():
            if part.get_content_type() == "text/html":
                found |= {m.group(1).strip("<>").lower() for m in CID.finditer(part.get_content())}
        return found
    except Exception:  # a mail we cannot read again shows nothing we can tell
        return set()


def signature_image(f: StoredFile, shown: set[str]) -> bool:
    """A small inline image of a staff mail shown by its HTML (`cid:`): its signature's logo, not
    something to relay. An inline image the HTML does not show is what the sender's client made of
    an attached photo (Apple Mail): it is relayed."""
    return (f.inline and f.content_type.startswith("image/") and f.size <= SIGNATURE_IMAGE_MAX
            and (f.content_id or "").strip("<>").lower() in shown)


def chosen(store: Store, complaint_id: int, carry: str, message_row: int | None) -> list[StoredFile]:
    """The files `carry` names: the message's own, the complaint's so far, or the customer's."""
    if carry == "message":
        if message_row is None:
            return []
        found = files.of_message(store, complaint_id, message_row)
        if any(f.source in ("staff", "note") and f.inline for f in found):
            shown = shown_cids(files.message_raw(store, message_row))
            found = [f for f in found if not (f.source in ("staff", "note") and signature_image(f, shown))]
        return found
    every = files.of_complaint(store, complaint_id)
    if carry == "complaint":
        return [f for f in every if f.direction == "in" and f.source in SHOWN_SOURCES]
    if carry == "evidence":  # `message_row` here: the last mail to the seller; only files since
        return [f for f in every if f.direction == "in" and f.source == "customer"
                and (message_row is None or f.message_row > message_row)]
    return []


def carry(cfg: Config, store: Store, complaint, carry_what: str, message_row: int | None,
          text_bytes: int) -> Carried:
    """What a mail about `complaint` carries. `text_bytes`: its text and HTML as rendered, plus room
    for the listing."""
    picked = chosen(store, complaint["id"], carry_what, message_row)
    if not picked:
        return Carried()
    prepared: dict[int, tuple[StoredFile, Attachment | None, str | None]] = {}
    who = evidence.Identity(complaint["customer_addr"], complaint["customer_name"])
    candidates = []
    for f in picked:
        try:  # one file that fails here is listed as not attached; the mail still goes
            att, withheld = _prepared(store, f, carry_what, who)
            found = archives.listing(att.filename, att.content) if att else None
        except Exception as e:
            log_event("file_not_carried", complaint["ref"], severity=40, exc_info=True, file=f.number)
            att, withheld, found = None, f"it could not be prepared ({type(e).__name__})", None
        prepared[f.id] = (f, att, withheld)
        candidates.append(Candidate(f.id, att.filename if att else f.filename, len(att.content) if att else f.size,
                                    kept=att is not None, inner=found.names if found else (),
                                    unreadable=found.unreadable if found else None))
    packed = file_rules.pack(candidates, max_message_bytes=int(cfg.attachments.max_message_mb * 1024 * 1024),
                             text_bytes=text_bytes, blocked=cfg.attachments.blocked_extensions)
    out = Carried(attached=[(prepared[key][0], prepared[key][1]) for key in packed.attached])
    held = {h.key: h for h in packed.held}
    for f, att, withheld in prepared.values():
        h = held.get(f.id)
        if withheld:
            h = Held(f.id, "withheld", withheld)
        out.listing.append({"number": f.number, "filename": att.filename if att else f.filename,
                            "type": f.content_type, "size": human_size(len(att.content) if att else f.size),
                            "state": h.reason if h else "attached", "detail": h.name if h else "",
                            "problem": f.problem})
        if h:
            out.held.append((f, h))
    return out


def _prepared(store: Store, f: StoredFile, carry_what: str, who) -> tuple[Attachment | None, str | None]:
    """The file as it would be attached, or None with why (`withheld`) or without (not kept)."""
    content = files.content(store, f)
    name, ctype, withheld, inline = f.filename, f.content_type, None, f.inline
    if content is not None and carry_what == "evidence":
        cleaned = _for_seller(f, content, who)
        if isinstance(cleaned, evidence.Withheld):
            content, withheld = None, cleaned.why
        else:  # attached plainly: a Content-ID often holds the sender's own domain
            name, ctype, content, inline = cleaned.filename, cleaned.content_type, cleaned.content, False
    att = Attachment(name, ctype, content, f.content_id if inline else None, inline) \
        if content is not None else None
    return att, withheld


def refused(cfg: Config, store: Store, complaint_id: int, message_row: int) -> list[dict]:
    """The customer's files in this message no mail may carry whatever its size (a blocked type, also
    inside an archive, or an archive that cannot be checked): what the customer is told to send
    differently. One dict per file: filename, reason, detail."""
    out = []
    for f in files.of_message(store, complaint_id, message_row):
        if f.source != "customer" or f.direction != "in":
            continue
        try:
            content = files.content(store, f)
            found = archives.listing(f.filename, content) if content is not None else None
            h = file_rules.refusal(Candidate(f.id, f.filename, f.size, inner=found.names if found else (),
                                             unreadable=found.unreadable if found else None),
                                   cfg.attachments.blocked_extensions)
        except Exception:
            log_event("file_not_checked", None, severity=40, exc_info=True, file=f.filename)
            continue
        if h:
            out.append({"filename": f.filename, "reason": h.reason, "detail": h.name})
    return out


def _for_seller(f: StoredFile, content: bytes, who: evidence.Identity):
    """The customer's file as a seller may see it, or why not (outbound/evidence.py); a forwarded
    mail or a text that names the customer stays with us whatever its name."""
    if f.content_type.startswith("message/"):
        return evidence.Withheld("a forwarded mail carries the customer's headers")
    if f.content_type.startswith("text/") and sellers.address_pattern(who.address).found(
            content.decode("utf-8", "replace")):
        return evidence.Withheld("it names the customer")
    return evidence.for_seller(f.filename, f.content_type, content, who, f.number)
