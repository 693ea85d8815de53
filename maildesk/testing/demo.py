"""`maildesk demo`: a whole helpdesk on this machine, no Gmail account.

A throwaway Dovecot holds the support inbox, a small SMTP server on
loopback plays the internet (mail for the support address lands in that
inbox, everything else is printed and kept as .eml files), and the real
daemon runs against both. A few sample complaints are sent in, and the
answers are shown as they go out. `maildesk demo send` adds your own.
"""
from __future__ import annotations

import json
import os
import shutil
import shlex
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email import message_from_bytes, policy as email_policy
from pathlib import Path

from maildesk.testing.dovecot import Dovecot, find_dovecot
from maildesk.testing.smtp_sink import SmtpSink

SUPPORT = "support@imolocale.test"
PASSWORD = "demo-password"

SAMPLES = [
    ("Camille Martin", "camille.martin@example.fr", "Colis jamais reçu",
     "Bonjour,\n\nJ'ai commandé une lampe le 12 novembre (commande n° 784512) et je n'ai toujours rien reçu.\n"
     "Le suivi indique « livré » mais le colis n'est pas arrivé.\n\nMerci de votre aide,\nCamille"),
    ("John Smith", "john.smith@example.com", "Wrong item delivered",
     "Hello,\n\nI ordered a blue teapot (order number 99120) but the seller sent a red one.\n"
     "I would like a replacement or a refund.\n\nThanks,\nJohn"),
    ("Léa Dubois", "lea.dubois@example.fr", "Remboursement en attente",
     "Bonjour,\n\nLe vendeur m'a promis un remboursement il y a trois semaines et rien depuis.\n\nLéa"),
]

CONFIG = """# written by `maildesk demo`: a local helpdesk on loopback ports
[mailbox]
host = "127.0.0.1"
port = {imap_port}
security = "none"
username = "{support}"
password = "{password}"
idle = true
poll_seconds = 5

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from_address = "{support}"
from_name = "imolocale (démo)"

[storage]
database = "maildesk.db"

[teams]
customer_service = ["service.client@imolocale.test"]
resolution = ["resolution@imolocale.test"]
customer_experience = ["experience.client@imolocale.test"]
admins = ["admin@imolocale.test"]

[policy]
reference_prefix = "IMO"

[security]
require_authenticated_staff = false

[logging]
file = "maildesk.log"
"""


def _say(text: str = "") -> None:
    print(text, flush=True)


def _describe(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=email_policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body else ""
    lines = [f"  To: {msg['To']}", f"  Subject: {msg['Subject']}", ""]
    lines += [f"  | {ln}" for ln in text.strip().splitlines()[:14]]
    if len(text.strip().splitlines()) > 14:
        lines.append("  | ...")
    return "\n".join(lines)


def send(smtp_port: int, sender: str, name: str, subject: str, text: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<demo-{time.time_ns()}@{sender.rpartition('@')[2]}>"
    msg.set_content(text)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as s:
        s.send_message(msg)


def _watch(sink: SmtpSink, seen: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            sink.wait_for(len(seen) + 1, timeout=0.5)
        except TimeoutError:
            continue
        for captured in sink.messages[len(seen):]:
            seen.append(1)
            if SUPPORT in captured.rcpt_tos:
                continue  # mail into the inbox: the daemon's input, not its answer
            _say(f"\n>>> maildesk sent a mail to {', '.join(captured.rcpt_tos)}")
            _say(_describe(captured.data))


MARKER = ".maildesk-demo"  # written in every folder the demo makes: the only folders it deletes


def run_demo(directory: Path, seconds: float = 0) -> int:
    directory = directory.resolve()
    try:
        find_dovecot()
    except FileNotFoundError as e:
        print(f"maildesk: the demo needs Dovecot: {e}", file=sys.stderr)
        return 2
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            print(f"maildesk: {directory} exists and was not made by `maildesk demo`; it is left alone. "
                  "Choose another --dir (or an empty or new folder).", file=sys.stderr)
            return 2
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by `maildesk demo`: `maildesk demo` may delete this folder\n")
    os.chmod(directory, 0o755)
    dovecot = Dovecot(directory / "dovecot", users={SUPPORT: PASSWORD})
    dovecot.start()
    sink = SmtpSink(deliver_to=dovecot, local_addresses={SUPPORT}, spool_dir=directory / "sent")
    sink.start()
    config = directory / "maildesk.toml"
    config.write_text(CONFIG.format(imap_port=dovecot.port, smtp_port=sink.port, support=SUPPORT, password=PASSWORD))
    (directory / "ports.json").write_text(json.dumps({"smtp": sink.port, "imap": dovecot.port}))
    maildesk = [sys.executable, "-m", "maildesk", "--config", str(config)]
    daemon = subprocess.Popen([*maildesk, "run"], stderr=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: [print("    log: " + ln.rstrip(), flush=True) for ln in daemon.stderr],
                     daemon=True).start()
    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch, args=(sink, seen, stop), daemon=True)
    _say(f"maildesk demo: Dovecot IMAP on 127.0.0.1:{dovecot.port}, SMTP on 127.0.0.1:{sink.port}, "
         f"support address {SUPPORT}")
    _say(f"Files: {directory} (config, database, log, sent/*.eml)\n")
    watcher.start()
    try:
        for name, addr, subject, text in SAMPLES:
            _say(f"<<< {name} <{addr}> writes to support: {subject}")
            send(sink.port, addr, name, subject, text)
        cmd = _command()
        _say("\nSend your own complaint from another terminal:\n"
             f"  {cmd} demo-send --dir {directory} --from you@example.com "
             "--subject \"Mon problème\" \"Bonjour, ...\"\n"
             f"See a complaint's timeline:\n  {cmd} --config {config} list\n"
             f"  {cmd} --config {config} show IMO-XXXXXX\n"
             "Ctrl-C stops the demo.\n")
        deadline = time.monotonic() + seconds if seconds else None
        while daemon.poll() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
        return 0 if daemon.returncode in (None, 0) else 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(10)
            except subprocess.TimeoutExpired:
                daemon.kill()
        sink.stop()
        dovecot.stop()
        _say("demo stopped.")


def demo_send(directory: Path, sender: str, subject: str, text: str, name: str = "") -> int:
    ports = json.loads((directory.resolve() / "ports.json").read_text())
    send(ports["smtp"], sender, name, subject, text)
    print(f"sent to {SUPPORT}; the demo window shows maildesk's answer.")
    return 0


def _command() -> str:
    """How to call this maildesk from another terminal: the script beside this interpreter (the
    checkout's .venv or any install), else the interpreter with -m."""
    script = Path(sys.executable).parent / "maildesk"
    return shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m maildesk"
