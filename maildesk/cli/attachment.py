"""`maildesk attachment REF [N --out DIR]`: a complaint's files (number, name, type, size, who
sent it, when, kept or why not, what is wrong with it), and file N written out. Reads the
database only (works while the daemon runs); writes into DIR, never over a file, never outside it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from maildesk.cli.display import shown
from maildesk.core import refs, timefmt
from maildesk.inbound.attachments import safe_filename
from maildesk.store import files
from maildesk.store.db import from_iso
from maildesk.store.merges import survivor

NOT_KEPT = {"over_limit": "not kept: over [storage] attachment_max_mb",
            "on_server": "left on the server (large message)"}
_ROLES = {"customer": "customer", "customer:staff_sent": "staff", "seller": "seller", "note": "note",
          "status_request": "customer"}


def add_parser(sub) -> None:
    p = sub.add_parser("attachment", help="list a complaint's files, or write file N out (--out DIR)")
    p.add_argument("ref", help="the complaint's reference, e.g. IMO-4K7M2Q")
    p.add_argument("number", nargs="?", type=int, help="the file to write out (its N in the list)")
    p.add_argument("--out", help="the directory to write file N into (never overwrites: name-1.ext ...)")
    p.add_argument("--json", action="store_true", help="print JSON (times in UTC) instead of lines")


def human_size(size: int) -> str:
    """40 KB, 2.5 MB: sizes as people say them (1 KB = 1024 bytes)."""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if size >= 10 else f"{size:.1f} {unit}".replace(".0 ", " ")
    return ""


def state(f: files.StoredFile) -> str:
    """kept / not kept: why, then what is wrong with it if anything ('kept; empty file')."""
    kept = "kept" if f.kept else NOT_KEPT.get(f.not_kept or "", "not kept")
    return f"{kept}; {f.problem}" if f.problem else kept


def sender(f: files.StoredFile, cfg) -> str:
    """customer / seller / note by NAME / staff NAME, from the message that carried the file."""
    if f.direction == "out":
        return "maildesk"
    who = cfg.staff_names.get(f.sender or "") or f.sender or "?"
    if f.source == "note":
        return f"note by {who}"
    if f.source == "suspicious":  # claimed a staff address without proving it
        return f"unproven mail from {f.sender or '?'}"
    role = _ROLES.get(f.source)
    if role in ("customer", "seller"):
        return role
    if f.sender in cfg.staff or f.source.startswith("staff") or role == "staff":
        return f"staff {who}"
    return f"{f.source} {f.sender or ''}".strip()


def as_dict(f: files.StoredFile, cfg) -> dict:
    return {"number": f.number, "filename": f.filename, "content_type": f.content_type, "size": f.size,
            "from": sender(f, cfg), "sender": f.sender, "at": f.at, "kept": f.kept,
            "not_kept": NOT_KEPT.get(f.not_kept or "") if not f.kept else None, "problem": f.problem,
            "inline": f.inline, "sha256": f.sha256, "state": state(f)}


def unread_parts(store, complaint_id: int) -> list[dict]:
    """The parse notes that say a message's parts were not all read (a 10,000-part message)."""
    found = []
    for ev in store.timeline(complaint_id):
        if ev["kind"] == "decoded_best_effort":
            for note in json.loads(ev["detail"] or "{}").get("notes", []):
                if "parts not read" in note:
                    found.append({"at": ev["at"], "note": note})
    return found


def lines(listed: list[dict], cfg) -> list[str]:
    """The files as `show` and `attachment` print them, one line each."""
    out = []
    for d in listed:
        out.append(f"  {d['number']:>3}  {d['filename']}  {d['content_type']}  {human_size(d['size'])}  "
                   f"from {d['from']}, {timefmt.local(from_iso(d['at']), cfg.tz)}  [{d['state']}]")
    return out


def attachment_command(app, args) -> int:
    ref = refs.read_reference(app.cfg.policy.reference_prefix, args.ref) or args.ref.strip().upper()
    row = app.store.complaint(ref)  # read as forgivingly as `show` reads it (report.reference)
    if row is None:
        return _refused(f"no complaint {args.ref}")
    moved = survivor(app.store, row)
    note = f"{row['ref']} was merged into {moved['ref']}: its files are listed there" if moved is not row else None
    stored = files.of_complaint(app.store, moved["id"])
    if args.number is not None or args.out:
        return _write(app, moved["ref"], stored, args)
    listed = [as_dict(f, app.cfg) for f in stored]
    unread = unread_parts(app.store, moved["id"])
    if args.json:
        print(json.dumps({"ref": moved["ref"], "asked": row["ref"], "merged_into": moved["ref"] if note else None,
                          "files": listed, "parts_not_read": unread}, ensure_ascii=False, indent=2))
        return 0
    out = [note] if note else []
    out.append(f"{moved['ref']}: {len(listed)} file{'s' if len(listed) != 1 else ''}" + (":" if listed else ""))
    out += lines(listed, app.cfg)
    out += [f"  note: {timefmt.local(from_iso(u['at']), app.cfg.tz)}  {u['note']}" for u in unread]
    print("\n".join(shown(line) for line in out))
    return 0


def _write(app, ref: str, stored: list[files.StoredFile], args) -> int:
    if args.number is None or not args.out:
        return _refused("to write a file out, give its number and a directory: "
                        f"maildesk attachment {ref} N --out DIR")
    if not 1 <= args.number <= len(stored):
        have = f"its files are numbered 1 to {len(stored)}" if stored else "it has no files"
        return _refused(f"{ref} has no file {args.number}: {have} (maildesk attachment {ref} lists them)")
    f = stored[args.number - 1]
    data = files.content(app.store, f)
    if data is None:
        why = NOT_KEPT.get(f.not_kept or "", "not kept")
        return _refused(f"file {f.number} of {ref} ({f.filename}, {human_size(f.size)}) has no bytes here: {why}; "
                        "the original message in the mailbox still has it")
    out = Path(args.out)
    if not out.is_dir():
        return _refused(f"{out} is not a directory")
    try:
        path = write_new(out, safe_filename(f.filename, f.number, f.content_type), data)
    except OSError as e:
        return _refused(f"cannot write into {out}: {e.strerror}")
    print(shown(str(path)))
    return 0


def write_new(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` as DIRECTORY/name, or name-1.ext, name-2.ext ... when taken: never over a
    file, never outside DIRECTORY (the name is a bare file name, checked again here)."""
    name = Path(name).name
    if name in ("", ".", ".."):
        name = "attachment.bin"
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    for n in range(0, 10_000):
        candidate = directory / (name if n == 0 else f"{stem}-{n}{dot}{ext}")
        if candidate.resolve().parent != directory.resolve():
            raise OSError(0, f"{name} would leave the directory")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return candidate
    raise OSError(0, "too many files of that name")


def _refused(line: str) -> int:
    print(f"maildesk: {shown(line)}", file=sys.stderr)
    return 1


COMMANDS = {"attachment": attachment_command}
