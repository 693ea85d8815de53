"""The one registry of staff commands, the way GNU Mailman 3 declares its mail
commands: one small object per command with its name, what argument it takes,
its help line and `decide()`, which says what must happen. The help text staff
get, the checks on a command line and what the workflow does all come from
here, so they cannot drift apart.

`decide()` returns a `policy.Decision` for the complaint, or `ForSeller` for
the commands the seller desk carries out (they touch the seller registry).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.config import Config
from maildesk.core import addresses, policy
from maildesk.core.policy import Complaint, Decision


@dataclass(frozen=True)
class ForSeller:
    """A seller command for the seller desk, with the staff text meant for the seller."""
    name: str
    arg: str
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
        return policy.assign(c, arg.lower())


class Reopen(Command):
    def decide(self, c, now, cfg, actor, arg, text):
        return policy.reopen(c, now, actor)


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
    Level("level", "N", "move to level N (1, 2 or 3)"),
    Command("seller", "ID-or-address", "link the complaint to a seller and write to them",
            uses_text=True, for_seller=True),
    Command("contact-seller", "TEXT", "write to the linked seller", uses_text=True, for_seller=True),
    Command("seller-failed", help="seller outreach failed: the customer may get the seller's details",
            uses_text=True, for_seller=True),
    Command("uncooperative", "REASON", "report the linked seller", uses_text=True, for_seller=True),
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
