"""The typed part of a decision: which fields of a complaint change.

A policy function says `d.changes.update(status="open", resolved_at=None)`; a
misspelt field fails there, in the core, not as an SQL error in the workflow.
Changes read like a mapping of the fields that were set (None is a value:
"clear this field"), so a test compares them with a dict.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

class _Unset:
    """A field the decision leaves alone (None would mean "clear it")."""

    def __repr__(self) -> str:
        return "UNSET"


_UNSET = _Unset()


@dataclass(eq=False)
class Changes(Mapping):
    status: str | None | _Unset = _UNSET
    level: int | _Unset = _UNSET
    owner: str | None | _Unset = _UNSET
    auto_level: int | _Unset = _UNSET
    acked_at: datetime | None | _Unset = _UNSET
    last_customer_update_at: datetime | None | _Unset = _UNSET
    first_staff_answer_at: datetime | None | _Unset = _UNSET
    findings_reminded_at: datetime | None | _Unset = _UNSET
    target_warned_at: datetime | None | _Unset = _UNSET
    target_missed_at: datetime | None | _Unset = _UNSET
    resolved_at: datetime | None | _Unset = _UNSET
    closed_at: datetime | None | _Unset = _UNSET
    satisfaction_asked_at: datetime | None | _Unset = _UNSET
    satisfaction_reminded_at: datetime | None | _Unset = _UNSET
    rating: int | None | _Unset = _UNSET
    rating_text: str | None | _Unset = _UNSET
    rated_at: datetime | None | _Unset = _UNSET
    category: str | _Unset = _UNSET
    merged_into: str | None | _Unset = _UNSET  # the survivor's reference (core/merging.py)

    def update(self, other: Mapping | None = None, /, **values) -> None:
        for name, value in {**dict(other or {}), **values}.items():
            self[name] = value

    def __setitem__(self, name: str, value) -> None:
        if name not in _NAMES:
            raise KeyError(f"a decision cannot change {name!r}: not a complaint field")
        setattr(self, name, value)

    def __getitem__(self, name: str):
        value = getattr(self, name, _UNSET) if name in _NAMES else _UNSET
        if value is _UNSET:
            raise KeyError(name)
        return value

    def __iter__(self):
        return (name for name in _NAMES if getattr(self, name) is not _UNSET)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Changes({dict(self)!r})"


_NAMES = tuple(f.name for f in fields(Changes))
