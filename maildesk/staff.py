"""Staff mail: commands at the top of a message, and whether the message
really comes from staff.

Commands are lines starting with `#` at the very top; the rest is the
reply. A message only counts as staff when our own receiving server
(the topmost Authentication-Results header with our authserv-id, RFC 8601)
says DMARC passed, or DKIM passed for the sender's domain: anyone can type
a staff address into From.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import addresses

COMMANDS = {
    # name: (takes an argument?, help)
    "note": (False, "internal note, never sent to the customer"),
    "ask": (False, "ask the customer for more information (the complaint waits for them)"),
    "resolve": (False, "resolve; your text goes with the resolution mail and the satisfaction question"),
    "escalate": (False, "move to the next level now"),
    "assign": (True, "#assign ADDRESS: make a staff member the owner"),
    "reopen": (False, "reopen a resolved or closed complaint"),
    "level": (True, "#level N: move to level N (1, 2 or 3)"),
    "seller": (True, "#seller ID-or-address: link the complaint to a seller and write to them"),
    "contact-seller": (True, "#contact-seller TEXT: write to the linked seller"),
    "seller-failed": (False, "seller outreach failed: the customer may get the seller's details"),
    "uncooperative": (True, "#uncooperative REASON: report the linked seller"),
}


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
            if name not in COMMANDS:
                errors.append(f"#{name} is not a command")
            elif COMMANDS[name][0] and not arg:
                errors.append(f"#{name} needs an argument ({COMMANDS[name][1]})")
            elif name == "level" and arg not in ("1", "2", "3"):
                errors.append(f"#level takes 1, 2 or 3, not {arg!r}")
            elif name == "assign" and not (verdict := addresses.sendable(arg.lower()))[0]:
                errors.append(f"#assign needs an e-mail address mail can be sent to, not {arg!r}: {verdict[1]}")
            elif not COMMANDS[name][0] and arg and name not in ("note", "resolve", "ask"):
                errors.append(f"#{name} takes no argument")
            else:
                commands.append(Command(name, arg))
        i += 1
    others = sorted({f"#{c.name}" for c in commands if c.name != "note"})
    if others and any(c.name == "note" for c in commands):
        errors.append(f"#note cannot be combined with other commands ({', '.join(others)}): a note is "
                      "never sent and obeys nothing; send the commands in a separate reply")
    body = "\n".join(lines[i:]).strip()
    # `#note some text` / `#ask text` on the command line itself count as text too
    inline = [c.arg for c in commands if c.name in ("note", "resolve", "ask") and c.arg]
    if inline:
        body = "\n".join([*inline, body]).strip()
    return StaffMessage(tuple(commands), body, tuple(errors))


def help_text() -> str:
    return "\n".join(f"  #{name:<15} {info[1]}" for name, info in COMMANDS.items())


# --- Authentication-Results (RFC 8601) ----------------------------------------

def _strip_comments(value: str) -> str:
    out, depth = [], 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def _results(header: str) -> tuple[str, list[dict]]:
    """(authserv-id, [{method, result, props}]) from one header value."""
    parts = [p.strip() for p in _strip_comments(header).split(";")]
    authserv = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    results = []
    for part in parts[1:]:
        m = re.match(r"([\w.-]+)\s*=\s*([\w-]+)(.*)", part, re.S)
        if not m:
            continue
        props = dict((k.lower(), v.strip('"').lower()) for k, v in re.findall(r"([\w.-]+)\s*=\s*(\"[^\"]*\"|\S+)", m.group(3)))
        results.append({"method": m.group(1).lower(), "result": m.group(2).lower(), "props": props})
    return authserv, results


def verify_sender(auth_results: tuple[str, ...], sender: str, authserv_id: str) -> tuple[bool, str]:
    """Did our own server see DMARC pass, or DKIM pass for the sender's domain?"""
    domain = sender.rpartition("@")[2].lower()
    for header in auth_results:  # topmost first: the one our server added
        server, results = _results(header)
        if server != authserv_id.lower():
            continue
        for r in results:
            if r["method"] == "dmarc" and r["result"] == "pass":
                from_domain = r["props"].get("header.from", domain)
                if from_domain == domain:
                    return True, "dmarc=pass"
        for r in results:
            if r["method"] == "dkim" and r["result"] == "pass":
                signer = r["props"].get("header.d") or r["props"].get("header.i", "").rpartition("@")[2]
                if signer == domain:
                    return True, f"dkim=pass header.d={signer}"
        return False, f"{authserv_id} reports neither dmarc=pass nor dkim=pass for {domain}"
    return False, f"no Authentication-Results from {authserv_id}"
