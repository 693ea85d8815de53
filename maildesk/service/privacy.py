"""`maildesk privacy`: answering a person's access request (export, RGPD art. 15/20) and their
erasure request (art. 17), down to the bytes of the database, its WAL, the IMAP folders we
file mail in and our log files.

The erasure runs one transaction per complaint (`anonymise_complaint`, also what a retention
sweep calls), so a run killed halfway leaves every complaint either whole or anonymised, and
running it again finishes the job. The audit keeps a keyed hash of the address, never the
address: the key lives outside the database (`privacy_key`), so a copy of the database alone
cannot be searched by hashing candidate addresses.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from maildesk.core import privacy
from maildesk.core.addresses import mailbox_key
from maildesk.logs import event as log_event
from maildesk.store import files as stored_files, privacy as rows, retention as retention_rows
from maildesk.store.db import Store
from maildesk.testing import faults

KEY_ENV = "MAILDESK_PRIVACY_KEY"


def privacy_key(db_path: Path, env: dict | None = None) -> bytes:
    """The HMAC key: $MAILDESK_PRIVACY_KEY (hex), else `<database>.privacy-key`, created once
    (32 random bytes, mode 0600) beside the database, not inside it."""
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        return bytes.fromhex(env[KEY_ENV])
    path = Path(f"{db_path}.privacy-key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return bytes.fromhex(path.read_text().strip())


# --- export ------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", name or "file").strip("._")[:100] or "file"


class _Archive:
    def __init__(self, zf: zipfile.ZipFile):
        self.zf, self.entries = zf, []

    def add(self, path: str, data: bytes | str, what: str) -> None:
        self.zf.writestr(path, data)
        self.entries.append({"path": path, "what": what})


def export_person(store: Store, address: str, out: Path, now: datetime,
                  timeline: Callable[[str], tuple[dict, str]]) -> dict:
    """Everything held about the person in one zip; `timeline(ref)` gives a complaint's timeline
    as (JSON document, readable text). Reads only. Returns the counts written."""
    own = rows.complaints_of(store, address)
    ids = [c["id"] for c in own]
    sent = rows.messages_from(store, address)
    to_them = rows.mail_to(store, address, ids)
    told = rows.disclosures(store, ids)
    counts = {"complaints": len(own), "messages": 0, "files": 0}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        a = _Archive(zf)
        for c in own:
            doc, text = timeline(c["ref"])
            a.add(f"complaints/{c['ref']}/timeline.json", json.dumps(doc, ensure_ascii=False, indent=2, default=str),
                  f"complaint {c['ref']}: its whole timeline (steps, messages, mail sent), as JSON")
            a.add(f"complaints/{c['ref']}/timeline.txt", text, f"complaint {c['ref']}: the same timeline, readable")
        for n, m in enumerate(sent, start=1):
            where = f"complaints/{m['ref']}" if m["complaint_id"] in ids else f"copied-on/{m['ref'] or 'none'}"
            whose = "your complaint" if m["complaint_id"] in ids else "another customer's complaint you were copied on"
            if m["raw"] is not None:
                a.add(f"{where}/sent-by-you/{n:03d}.eml", m["raw"],
                      f"the original mail you sent on {m['at']} ({whose} {m['ref'] or '-'})")
                counts["messages"] += 1
            for f in stored_files.of_message(store, m["complaint_id"], m["id"]):
                data = stored_files.content(store, f)
                if data is not None:
                    a.add(f"{where}/files/{n:03d}-{f.number}-{_safe(f.filename)}", data,
                          f"a file you sent on {m['at']}: {f.filename} ({f.content_type}, {f.size} bytes)")
                    counts["files"] += 1
        for o in to_them:
            a.add(f"mail-to-you/{o['id']:05d}-{_safe(o['kind'])}.eml", o["raw"],
                  f"mail we {'sent' if o['sent_at'] else 'queued (' + o['status'] + ')'} to you on "
                  f"{o['sent_at'] or o['created_at']} ({o['ref'] or 'no complaint'}, {o['kind']})")
            counts["messages"] += 1
        a.add("ratings.json", json.dumps([{"ref": c["ref"], "rating": c["rating"], "comment": c["rating_text"],
                                           "rated_at": c["rated_at"]} for c in own if c["rating"]],
                                         ensure_ascii=False, indent=2),
              "the ratings you gave our answers")
        a.add("sellers.json", json.dumps([{"ref": e["ref"], "at": e["at"], "what": e["kind"], "by": e["actor"],
                                           "detail": json.loads(e["detail"] or "{}")} for e in told],
                                         ensure_ascii=False, indent=2),
              "each time your details, your words or your evidence went to a seller")
        note = None if own or sent or to_them else f"nothing is held about {address}"
        index = {"address": address, "generated_at": now.isoformat(), "counts": counts, "note": note,
                 "entries": a.entries + [{"path": "index.json", "what": "this index"},
                                         {"path": "README.txt", "what": "this index, readable"}]}
        zf.writestr("index.json", json.dumps(index, ensure_ascii=False, indent=2))
        zf.writestr("README.txt", _readme(index))
    return {**counts, "empty": note is not None}


def export_seller(store: Store, seller_id: str, out: Path, now: datetime) -> dict | None:
    record = rows.seller_record(store, seller_id)
    if record is None:
        return None
    messages = record.pop("messages")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        a = _Archive(zf)
        a.add("seller.json", json.dumps(record, ensure_ascii=False, indent=2, default=str),
              "the registry row, its history, strikes and outreach")
        for n, m in enumerate(messages, start=1):
            if m["raw"] is not None:
                a.add(f"messages/{n:03d}.eml", m["raw"], f"mail the seller sent on {m['at']} ({m['ref'] or '-'})")
        index = {"seller": record["seller"]["id"], "generated_at": now.isoformat(), "entries": a.entries}
        zf.writestr("index.json", json.dumps(index, ensure_ascii=False, indent=2))
        zf.writestr("README.txt", _readme(index))
    return {"messages": len(messages), "events": len(record["events"]), "strikes": len(record["strikes"])}


def _readme(index: dict) -> str:
    lines = [f"Personal data held by maildesk, exported {index['generated_at']}.", ""]
    if index.get("note"):
        lines += [index["note"].capitalize() + ".", ""]
    lines += [f"{e['path']}\n    {e['what']}" for e in index["entries"]]
    return "\n".join(lines) + "\n"


# --- erase -------------------------------------------------------------------------------------
@dataclass
class Erasure:
    refused: str | None = None
    plan: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    complaints: list[str] = field(default_factory=list)
    mailbox: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)
    file: dict = field(default_factory=dict)


def anonymise_complaint(store: Store, complaint_id: int, *, now: datetime, by: str) -> dict:
    """One complaint anonymised in its own transaction (the erase and a retention sweep call
    this per complaint); statistics stay. Idempotent. Returns the rows touched per table."""
    with store.transaction():
        faults.step("privacy_before_complaint")
        counts = rows.anonymise_complaint(store, complaint_id, now, by)
        faults.step("privacy_inside_complaint")
    return counts


def anonymise_seller(store: Store, seller_id: str, *, now: datetime, by: str) -> dict:
    """A seller's registry row (name, address, phone) and everything they wrote or we sent them,
    in one transaction; status, strikes and counts stay. Idempotent: {} when already done."""
    with store.transaction():
        address = retention_rows.anonymise_seller_row(store, seller_id, now, by)
        return rows.erase_elsewhere(store, address, now, by) if address else {}


def erase_person(store: Store, cfg, address: str, *, reason: str, by: str, now: datetime, key: bytes,
                 dry_run: bool = False, force: bool = False) -> Erasure:
    """Refuse, or show what would go (dry run), or anonymise every complaint of the person one
    transaction at a time, then their traces elsewhere, then the audit, then the file's bytes."""
    address = address.strip()
    why = privacy.ambiguous(address, cfg.staff, rows.seller_addresses(store), tuple(getattr(cfg, "admins", ()) or ()))
    if "@" not in address:
        why = f"{address!r} is not an address"
    if why:
        return Erasure(refused=why)
    plan = rows.plan(store, address)
    if plan["open"] and not force and not dry_run:
        return Erasure(refused=f"{len(plan['open'])} complaint(s) still open ({', '.join(plan['open'])}): "
                               f"resolve them first, or erase with --force", plan=plan)
    result = Erasure(plan=plan)
    if dry_run:
        return result
    rows.secure(store)
    totals: dict[str, int] = {}
    for c in rows.complaints_of(store, address):
        result.complaints.append(c["ref"])
        for k, v in anonymise_complaint(store, c["id"], now=now, by=by).items():
            totals[k] = totals.get(k, 0) + v
    with store.transaction():
        for k, v in rows.erase_elsewhere(store, address, now, by).items():
            totals[f"elsewhere_{k}"] = v
        rows.record_erasure(store, privacy.keyed_hash(key, address), now, by,
                            privacy.redact_text(reason, address, privacy.ERASED),
                            {"complaints": len(result.complaints), **totals})
    result.counts = totals
    result.file = rows.scrub_file(store)
    log_event("privacy_erased", complaints=len(result.complaints), by=by)
    return result


def erased(store: Store, address: str, key: bytes) -> list:
    return rows.erased_before(store, privacy.keyed_hash(key, address))


# --- outside the database ----------------------------------------------------------------------
def erase_from_mailbox(inbox, folders: list[str], address: str, refs: list[str]) -> dict[str, int]:
    """Mail from, to or copied to the person, and mail whose subject names one of their
    complaints, deleted and expunged from each folder; counts per folder."""
    return {folder: inbox.delete_matching(folder, address, refs) for folder in folders}


def erase_from_logs(paths: list[Path], address: str, names: list[str]) -> dict[str, int]:
    """Each log file (and its rotated copies) rewritten in place with the address and the
    names masked by as many `x`: same length, so a daemon appending meanwhile loses nothing."""
    needles = [s.encode("utf-8") for s in {address.strip(), *names} if s and len(s) >= 3]
    found = {}
    for base in paths:
        for path in sorted(base.parent.glob(base.name + "*")):
            if not path.is_file():
                continue
            with open(path, "r+b") as f:
                data = f.read()
                masked, n = privacy.mask_spans(data, needles)
                if n:
                    _write_changes(f, data, masked)
                found[str(path)] = n
    return found


def _write_changes(f, old: bytes, new: bytes) -> None:
    i, n = 0, len(old)
    while i < n:
        if old[i] != new[i]:
            j = i
            while j < n and old[j] != new[j]:
                j += 1
            f.seek(i)
            f.write(new[i:j])
            i = j
        else:
            i += 1
    f.flush()
    os.fsync(f.fileno())


def names_of(store: Store, address: str) -> list[str]:
    """The names the person gave (read before the erase: the log rewrite masks them too)."""
    return sorted({c["customer_name"] for c in rows.complaints_of(store, address) if c["customer_name"]}
                  | {mailbox_key(address)})
