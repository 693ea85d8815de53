"""Merging complaint A into complaint B (`#merge IMO-XXXXXX`, `maildesk merge A B`): may it
happen, and what happens. Pure: the service hands in both complaints as plain values and
carries the answer out (service/merging.py), the store moves the rows (store/merges.py).

The rules, and why:
- Never into itself, into an unknown reference, or from or into a complaint already merged:
  a merged complaint is history. Into one that was itself merged we REFUSE rather than follow,
  and name the complaint it lives on: staff then merge into what they meant, knowingly.
- Only two complaints of the same customer (same mailbox key); another customer's complaint
  needs `force`, since the other customer's timeline will show A's messages to staff.
- A closed (or resolved, or imported) complaint merged into an open one: allowed, B keeps its
  clock, and staff are told that a closed complaint joined an open one.
- An open complaint merged into a closed one: B reopens (the customer's problem is live), and
  staff are told so. Both closed: B stays as it is, and staff are told.
- A stops: closed as merged (`merged_into`), no clock. B keeps its level, owner and deadlines.
- A's customer gets one mail saying the complaint continues under B's reference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from maildesk.core.policy import OPEN_STATUSES, Decision, Mail

FORCE = "force"


@dataclass(frozen=True)
class Side:
    """What the rule needs to know of one complaint."""
    ref: str
    customer_addr: str
    customer_key: str
    status: str
    merged_into: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: str


@dataclass(frozen=True)
class Merge:
    source: Decision  # A: closed as merged, its clock stopped
    target: Decision  # B: the `merged` event, maybe a reopening
    notice: Mail  # to A's customer, on B's thread
    notes: tuple[str, ...] = field(default_factory=tuple)  # what staff are told beyond the move


def read_argument(prefix: str, arg: str, read_reference) -> tuple[str | None, bool, str | None]:
    """(reference, force, error) from `IMO-XXXXXX [force]`; `read_reference(prefix, typed)`
    is refs.read_reference."""
    words = arg.split()
    force = bool(words) and words[-1].lower() == FORCE
    if force:
        words = words[:-1]
    if len(words) != 1:
        return None, force, f"#merge takes one reference, optionally followed by 'force' (#merge {prefix}-XXXXXX [force])"
    ref = read_reference(prefix, words[0])
    if ref is None:
        return None, force, f"#merge: {words[0]!r} is not a valid {prefix} reference"
    return ref, force, None


def decide(a: Side, b: Side | None, wanted: str, *, force: bool, actor: str, now: datetime,
           text: str = "") -> Merge | Refusal:
    """May A merge into B (`wanted`: the reference as asked, B None when unknown), and what happens."""
    if b is None:
        return Refusal(f"there is no complaint {wanted}; nothing was merged")
    if a.ref == b.ref:
        return Refusal(f"{a.ref} cannot be merged into itself")
    if a.merged_into:
        return Refusal(f"{a.ref} was already merged into {a.merged_into}; nothing was merged")
    if b.merged_into:
        return Refusal(f"{b.ref} was itself merged into {b.merged_into}: merge into {b.merged_into} if that is "
                       f"what you mean (maildesk does not follow merges on its own)")
    same = a.customer_key == b.customer_key
    if not same and not force:
        return Refusal(f"{b.ref} is another customer's complaint ({b.customer_addr}, not {a.customer_addr}); "
                       f"write `#merge {b.ref} force` if they really are one dispute")
    notes: list[str] = []
    if not same:
        notes.append(f"forced: {a.customer_addr}'s messages now show on {b.customer_addr}'s complaint")
    source, target = Decision(), Decision()
    source.changes.update(status="closed", closed_at=now, merged_into=b.ref)
    source.event("closed", reason=f"merged into {b.ref}", staff=actor)
    source.event("merged_into", target=b.ref, staff=actor, forced=not same)
    a_open, b_open = a.status in OPEN_STATUSES, b.status in OPEN_STATUSES
    if a_open and not b_open:
        target.changes.update(status="open", resolved_at=None, closed_at=None, satisfaction_asked_at=None,
                              satisfaction_reminded_at=None)
        target.event("reopened", reason=f"open complaint {a.ref} merged into it", staff=actor)
        notes.append(f"{b.ref} was {b.status} and is open again, because {a.ref} was still open")
    elif not a_open and b_open:
        notes.append(f"{a.ref} was {a.status}: its history joins the open {b.ref}, whose clock is unchanged")
    elif not a_open and not b_open:
        notes.append(f"both were settled ({a.ref} {a.status}, {b.ref} {b.status}): {b.ref} stays {b.status}")
    target.event("merged", source=a.ref, staff=actor, forced=not same)
    notice = Mail("merged", (a.customer_addr,), "merged", "customer",
                  context={"source": a.ref, "target": b.ref, "note": text})
    return Merge(source, target, notice, tuple(notes))
