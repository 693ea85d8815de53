"""`maildesk seller import FILE`: load or update the seller registry from
CSV or JSON, one transaction, with a line for every row that was refused.

CSV: a header row (id, shop_name, address, phone; comma, semicolon or tab;
UTF-8, with or without BOM). JSON: a list of objects, or {"sellers": [...]}.
Statuses are not imported: only admins' decisions change them.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from maildesk.core import addresses, sellers
from maildesk.store.sellers import Registry


MAX_BYTES = 64 * 1024 * 1024  # a registry of a million sellers fits; /dev/zero does not
# control characters that whitespace folding leaves: NUL, BEL, ESC, DEL, C1 (they reach mail and terminals)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


class ImportFileError(Exception):
    """The file as a whole cannot be read."""


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def lines(self) -> list[str]:
        out = [f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
               f"{len(self.rejected)} rejected"]
        out += [f"  added    {i}" for i in self.added]
        out += [f"  updated  {i}" for i in self.updated]
        out += [f"  rejected {where}: {why}" for where, why in self.rejected]
        return out


def read_rows(path: Path) -> list[tuple[str, dict]]:
    """[(where, raw row)] from a CSV or JSON file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ImportFileError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"{path} is larger than {MAX_BYTES // 2 ** 20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(f"{path} is not UTF-8 text") from None
    if Path(path).suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except ValueError as e:  # not JSON, or a number too long to convert
            raise ImportFileError(f"{path} is not valid JSON: {e}") from None
        except RecursionError:
            raise ImportFileError(f"{path}: JSON nested too deeply") from None
        if isinstance(data, dict):
            data = data.get("sellers")
        if not isinstance(data, list):
            raise ImportFileError(f'{path}: JSON must be a list of sellers or {{"sellers": [...]}}')
        return [(f"item {i}", item if isinstance(item, dict) else {}) for i, item in enumerate(data, 1)]
    head = text.splitlines()[0] if text.strip() else ""
    delimiter = max(",;\t", key=head.count)
    limit = csv.field_size_limit(max(len(text), 1))  # an over-long field is refused by its row, not by csv
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        if not reader.fieldnames or not any(sellers.FIELD_ALIASES.get(f.strip().lower()) == "id"
                                            for f in reader.fieldnames if f):
            raise ImportFileError(f"{path}: the first line must name the columns (id, shop_name, address, phone)")
        return [(f"line {reader.line_num}", row) for row in reader]
    except csv.Error as e:
        raise ImportFileError(f"{path}: line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(limit)


def _refused(raw: dict) -> tuple[None, str] | None:
    """A row the file's shape or its characters rule out before its fields are read."""
    if None in raw:  # csv puts values beyond the header's columns there
        return None, "more values than the first line names columns (a separator inside an unquoted value?)"
    for key, value in raw.items():
        found = _CONTROL.search(value) if isinstance(value, str) else None
        if found:
            return None, f"{str(key).strip()} holds a control character ({found.group()!r})"
    return None


def import_rows(registry: Registry, rows: list[tuple[str, dict]], now: datetime, actor: str,
                reserved: set[str]) -> ImportReport:
    """Add or update sellers. `reserved` are addresses a seller may not use
    (ours, staff): mail from them must keep its role. Call inside a transaction."""
    report = ImportReport()
    seen_ids: set[str] = set()
    seen_addresses: dict[str, str] = {}
    for where, raw in rows:
        row, why = _refused(raw) or sellers.validate_row(raw)
        if row is None:
            report.rejected.append((where, why))
            continue
        key = row.id.lower()
        existing = registry.get(row.id)
        owner = registry.by_address(row.address)
        sendable, unsendable_why = addresses.sendable(row.address)
        if key in seen_ids:
            why = f"id {row.id} appears twice in the file"
        elif not sendable:
            why = f"address {row.address!r} cannot be sent to: {unsendable_why}"
        elif row.address in reserved:
            why = f"address {row.address} is the support or a staff address"
        elif seen_addresses.get(row.address, key) != key:
            why = f"address {row.address} is already used by {seen_addresses[row.address]} in the file"
        elif owner is not None and owner["id"].lower() != key:
            why = f"address {row.address} already belongs to seller {owner['id']}"
        if why:
            report.rejected.append((where, why))
            continue
        seen_ids.add(key)
        seen_addresses[row.address] = row.id
        if existing is None:
            registry.add(row, now, actor)
            report.added.append(row.id)
            continue
        changes = sellers.row_changes(existing, row)
        if changes:
            registry.change(existing["id"], changes, now, actor, kind="updated")
            report.updated.append(existing["id"])
        else:
            report.unchanged.append(existing["id"])
    return report
