"""The one registry of staff commands, the way GNU Mailman 3 declares its mail
commands: one small object per command with its name, what argument it takes,
its help line and `decide()`, which says what must happen. The help text staff
get, the checks on a command line and what the workflow does all come from
here, so they cannot drift apart.

`decide()` returns a `policy.Decision` for the complaint, or `ForSeller` for
the commands the seller desk carries out (they touch the seller registry).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from maildesk.config import Config
from maildesk.core import addresses, categories, merging, policy, refs
from maildesk.core.policy import Complaint, Decision


@dataclass(frozen=True)
class ForSeller:
    """A seller command for the seller desk, with the staff text meant for the seller."""
    name: str
    arg: str
    text: str


@dataclass(frozen=True)
class Canned:
    """#template: a canned answer the service renders (it reads the files), the staff text after it.
    `name` is "" when staff asked for the list, or when the name cannot be a canned file's."""
    name: str
    text: str
    asked: str = ""  # what staff wrote after #template, for the list's answer


CANNED_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a file name in templates/canned/<lang>/, never a path


@dataclass(frozen=True)
class ForMerge:
    """`#merge REF [force]` for the merge service (service/merging.py), which loads both
    complaints and asks `core/merging.py` whether and how."""
    target: str
    force: bool
    text: str


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""  # e.g. "ADDRESS"; "" when it takes none
    help: str = ""
    takes_text: bool = False  # text on its own line counts as the message's text (#note, #ask, #resolve)
    uses_text: bool = False  # the message's text goes with it, not to the customer as a relay
    for_seller: bool = False  # the staff text is for the seller and never reaches the customer
    signed: bool = False  # its mail to the customer carries the staff member's name

    @property
    def help_line(self) -> str:
        return f"#{self.name} {self.argument}: {self.help}" if self.argument else self.help

    def check(self, arg: str) -> str | None:
        """Why this argument is refused, or None."""
        if self.argument and not arg:
            return f"#{self.name} needs an argument ({self.help_line})"
        if not self.argument and arg and not self.takes_text:
            return f"#{self.name} takes no argument"
        return None

    def decide(self, c: Complaint, now: datetime, cfg: Config, actor: str, arg: str, text: str):
        return ForSeller(self.name, arg, text)


class Note(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        d = Decision()
        d.event("note", text=text[:500])
        return d


class Ask(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        return policy.staff_answer(c, now, cfg, text, actor, ask=True)


class Resolve(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        return policy.resolve(c, now, cfg, text, actor)


class Escalate(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        return policy.move_to_level(c, now, cfg, min(c.level + 1, 3), actor, "staff")


class Level(Command):
    def check(self, arg):
        return super().check(arg) or (None if arg in ("1", "2", "3") else f"#level takes 1, 2 or 3, not {arg!r}")

    def decide(self, c, now, cfg, actor, arg, text):
        return policy.move_to_level(c, now, cfg, int(arg), actor, "staff")


class Assign(Command):
    def check(self, arg):
        if error := super().check(arg):
            return error
        ok, why = addresses.sendable(arg.lower())
        return None if ok else f"#assign needs an e-mail address mail can be sent to, not {arg!r}: {why}"

    def decide(self, c, now, cfg, actor, arg, text):
        return policy.assign(c, arg.lower(), actor)


class UseTemplate(Command):
    """`#template NAME`: a canned answer to the customer; `#template` alone: the list, to the staff member."""
    def check(self, arg):
        return f"#template takes one name, not {arg!r}" if len(arg.split()) > 1 else None

    def decide(self, c, now, cfg, actor, arg, text):
        name = arg.lower()
        return Canned(name if CANNED_NAME.fullmatch(name) else "", text, arg)


class Reopen(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        return policy.reopen(c, now, actor)


class Category(Command):
    """#category NAME: names are the config's ([categories]), so an unknown one is answered here,
    with the valid ones, rather than refused by check() (which does not see the config)."""

    def decide(self, c, now, cfg, actor, arg, text):
        d = Decision()
        name = categories.find(arg, cfg.categories)
        if name is None:
            d.tell_staff((actor,), "staff_command_error", "command_error", commands=help_text(),
                         errors=[categories.unknown(arg, cfg.categories)], original_subject=f"#category {arg}")
        elif name != c.category:
            d.changes["category"] = name
            d.event("categorised", category=name, previous=c.category)
        return d


class MergeInto(Command):
    def check(self, arg):
        if error := super().check(arg):
            return error
        return merging.read_argument("IMO", arg, lambda _p, typed: typed)[2]  # the shape; the reference is read in decide()

    def decide(self, c, now, cfg, actor, arg, text):
        ref, force, _ = merging.read_argument(cfg.policy.reference_prefix.upper(), arg, refs.read_reference)
        return ForMerge(ref or arg.split()[0].upper(), force, text)


class Dossier(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        d = Decision()
        d.event("dossier_sent")
        d.tell_customer(c, "dossier", "dossier", now)  # the record is attached by the workflow (service/dossier.py)
        return d


REGISTRY: dict[str, Command] = {cmd.name: cmd for cmd in (
    Note("note", help="internal note, never sent to the customer", takes_text=True, uses_text=True),
    Ask("ask", help="ask the customer for more information (the complaint waits for them)",
        takes_text=True, uses_text=True, signed=True),
    Resolve("resolve", help="resolve; your text goes with the resolution mail and the satisfaction question",
            takes_text=True, uses_text=True),
    Escalate("escalate", help="move to the next level now"),
    Assign("assign", "ADDRESS", "make a staff member the owner"),
    Reopen("reopen", help="reopen a resolved or closed complaint"),
    UseTemplate("template", "NAME", "send the canned answer NAME, then your text; #template alone lists them",
                uses_text=True, signed=True),
    Level("level", "N", "move to level N (1, 2 or 3)"),
    Category("category", "NAME", "set the complaint's category (an unknown name gets you the list)"),
    Command("seller", "ID-or-address", "link the complaint to a seller and write to them",
            uses_text=True, for_seller=True),
    Command("contact-seller", "TEXT", "write to the linked seller", uses_text=True, for_seller=True),
    Command("seller-failed", help="seller outreach failed: the customer may get the seller's details",
            uses_text=True, for_seller=True),
    Command("uncooperative", "REASON", "report the linked seller", uses_text=True, for_seller=True),
    MergeInto("merge", "REF [force]", "merge this complaint into REF (same customer; 'force' for another "
              "customer's); your text goes with the customer's notice", uses_text=True),
    Dossier("dossier", help="send the customer the dated record of their written complaint "
                            "(proof for the consumer mediator), as an HTML attachment"),
)}


def help_text() -> str:
    """The command list staff get with every refused command."""
    return "\n".join(f"  #{name:<15} {cmd.help_line}" for name, cmd in REGISTRY.items())


@dataclass(frozen=True)
class Step:
    command: Command
    arg: str
    text: str  # the staff text that goes with this command ("" when another one used it)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    relay: str  # staff text left over: relayed to the customer as an answer


def plan(names_and_args, text: str) -> Plan:
    """Where the staff text goes, from which commands there are, never their order: with a
    note it is the note; with a seller command it is for the first seller command (facts, a
    reason) and never reaches the customer, so #resolve / #ask go without it; otherwise the
    first #resolve or #ask takes it, and what no command took is relayed to the customer."""
    commands = [(REGISTRY[name], arg) for name, arg in names_and_args]
    notes = [c for c, _ in commands if c.name == "note"]
    if notes:
        return Plan((Step(notes[0], "", text),), "")
    for_seller = any(c.for_seller for c, _ in commands)
    seller_text, customer_text = (text, "") if for_seller else ("", text)
    steps = []
    for command, arg in commands:
        if command.for_seller:
            steps.append(Step(command, arg, seller_text))
            seller_text = ""
        elif command.uses_text:
            steps.append(Step(command, arg, customer_text))
            customer_text = ""
        else:
            steps.append(Step(command, arg, ""))
    return Plan(tuple(steps), customer_text)
