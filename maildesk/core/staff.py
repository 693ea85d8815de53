"""Staff mail: the commands at the top of a message.

Commands are lines starting with `#` at the very top; the rest is the
reply. Which commands exist, what they take and what they do is
`commands.REGISTRY`; whether the message really comes from staff is
`trust.py`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from maildesk.core.commands import REGISTRY


@dataclass(frozen=True)
class Command:
    name: str
    arg: str = ""


@dataclass(frozen=True)
class StaffMessage:
    commands: tuple[Command, ...]
    text: str
    errors: tuple[str, ...]


_CMD = re.compile(r"^#\s*([A-Za-z][\w-]*)\s*(.*)$")


def parse_commands(text: str) -> StaffMessage:
    """Split leading `#command` lines from the reply text and check them."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    commands, errors = [], []
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    while i < len(lines) and lines[i].lstrip().startswith("#"):
        line = lines[i].strip()
        m = _CMD.match(line)
        if not m:
            errors.append(f"{line!r} is not a command")
        else:
            name, arg = m.group(1).lower(), m.group(2).strip()
            error = REGISTRY[name].check(arg) if name in REGISTRY else f"#{name} is not a command"
            if error:
                errors.append(error)
            else:
                commands.append(Command(name, arg))
        i += 1
    others = sorted({f"#{c.name}" for c in commands if c.name != "note"})
    if others and any(c.name == "note" for c in commands):
        errors.append(f"#note cannot be combined with other commands ({', '.join(others)}): a note is "
                      "never sent and obeys nothing; send the commands in a separate reply")
    body = "\n".join(lines[i:]).strip()
    # `#note some text` / `#ask text` on the command line itself count as text too
    inline = [c.arg for c in commands if REGISTRY[c.name].takes_text and c.arg]
    if inline:
        body = "\n".join([*inline, body]).strip()
    return StaffMessage(tuple(commands), body, tuple(errors))
