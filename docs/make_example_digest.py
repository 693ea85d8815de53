"""Build docs/digest-example.{html,txt,png}: a realistic fortnight of
complaints played through the real workflow (mail in, the policy clock,
staff answers, resolutions, ratings), then the digest admins would get on
the morning of 24 November 2026, and a picture of it taken by headless
Chromium. Run: .venv/bin/python docs/make_example_digest.py [--no-png]
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.service import digest  # noqa: E402
from maildesk.core import refs  # noqa: E402
from maildesk.app import App  # noqa: E402
from maildesk.config import parse_config  # noqa: E402
from maildesk.store.db import iso  # noqa: E402

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc)  # 08:00 in Paris: when the digest goes out
H = timedelta(hours=1)
SUPPORT = "imolocale.xyz@gmail.com"
TEAMS = {"customer_service": ["service.client@imolocale.example"], "resolution": ["resolution@imolocale.example"],
         "customer_experience": ["experience.client@imolocale.example"], "admins": ["admin@imolocale.example"]}
AUTH = "mx.google.com; dkim=pass header.d=imolocale.example; dmarc=pass header.from=imolocale.example"

CUSTOMERS = [
    ("Camille Martin", "camille.martin@example.fr"), ("Lucas Bernard", "lucas.bernard@example.fr"),
    ("Léa Dubois", "lea.dubois@example.fr"), ("Hugo Petit", "hugo.petit@example.fr"),
    ("Chloé Moreau", "chloe.moreau@example.fr"), ("Nathan Laurent", "nathan.laurent@example.fr"),
    ("Manon Girard", "manon.girard@example.fr"), ("Louis Roux", "louis.roux@example.fr"),
    ("Inès Fournier", "ines.fournier@example.fr"), ("Jules Lambert", "jules.lambert@example.fr"),
    ("Emma Bonnet", "emma.bonnet@example.fr"), ("Arthur Mercier", "arthur.mercier@example.fr"),
    ("John Smith", "john.smith@example.com"), ("Sarah Jones", "sarah.jones@example.co.uk"),
]
SUBJECTS = [
    ("Colis jamais reçu", "Bonjour, ma commande n° {n} n'est jamais arrivée alors que le suivi indique « livré »."),
    ("Article cassé à la livraison", "Bonjour, le vase de la commande {n} est arrivé en morceaux. Photos jointes."),
    ("Remboursement toujours en attente", "Bonjour, le vendeur a accepté le retour de la commande {n} il y a trois "
                                          "semaines et je n'ai toujours pas été remboursé."),
    ("Mauvaise taille envoyée", "Bonjour, j'ai commandé une veste en M (commande {n}) et j'ai reçu du XL."),
    ("Vendeur injoignable", "Bonjour, le vendeur ne répond plus à mes messages depuis dix jours (commande {n})."),
    ("Double prélèvement", "Bonjour, j'ai été débité deux fois pour la commande {n}. Merci de vérifier."),
    ("Produit non conforme à l'annonce", "Bonjour, la lampe de la commande {n} n'a rien à voir avec les photos."),
    ("Retard de livraison", "Bonjour, la commande {n} devait arriver il y a une semaine, rien depuis."),
    ("Wrong item delivered", "Hello, I ordered a blue teapot (order number {n}) but received a red one."),
    ("Refund not received", "Hello, the seller promised a refund for order {n} two weeks ago. Nothing yet."),
]
# (share, hours to first staff answer, hours to resolution) - None: still open
FATES = [(0.35, (0.5, 5), (2, 20)), (0.30, (3, 18), (26, 46)), (0.20, (12, 36), (50, 110)), (0.15, (2, 30), None)]
RATINGS = ["5", "5/5 merci beaucoup", "4", "Très satisfait, merci !", "4/5", "3", "Pas satisfait du tout, "
           "toujours pas de remboursement.", "5 étoiles", "2"]


def config(directory: Path):
    return parse_config({
        "mailbox": {"host": "imap.gmail.com", "username": SUPPORT, "password": "unused"},
        "smtp": {"host": "smtp.gmail.com", "from_address": SUPPORT, "from_name": "imolocale — service client"},
        "storage": {"database": "maildesk.db"},
        "teams": TEAMS,
        "policy": {"timezone": "Europe/Paris"},
    }, directory)


def raw_mail(sender: str, name: str, subject: str, body: str, at: datetime, auth: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = f"<{random.getrandbits(64):x}@{sender.rpartition('@')[2]}>"
    if auth:
        msg["Authentication-Results"] = auth
    msg.set_content(body)
    return msg.as_bytes()


def plan(rng: random.Random) -> list[tuple[datetime, str, dict]]:
    """Who writes when, and what staff do about it: a list of timed actions."""
    actions = []
    for i in range(38):
        hours_ago = rng.uniform(0.5, 14 * 24) if i >= 8 else rng.uniform(0.5, 40)
        start = NOW - hours_ago * H
        name, address = CUSTOMERS[i % len(CUSTOMERS)]
        subject, body = SUBJECTS[(i * 7) % len(SUBJECTS)]
        if address.endswith((".com", ".co.uk")) != subject.isascii():
            subject, body = SUBJECTS[8 + i % 2] if address.endswith((".com", ".co.uk")) else SUBJECTS[i % 8]
        if i == 5:
            name, address = "Paul Garnier", "p.garnier@adresse-invalide.example"
        c = {"i": i, "name": name, "address": address, "subject": subject,
             "body": body.format(n=784000 + rng.randrange(999))}
        actions.append((start, "arrive", c))
        share, answer, resolve = rng.choices(FATES, weights=[f[0] for f in FATES])[0]
        actions.append((start + rng.uniform(*answer) * H, "answer", c))
        if resolve:
            done = start + rng.uniform(*resolve) * H
            actions.append((done, "resolve", c))
            if rng.random() < 0.75:
                actions.append((done + rng.uniform(2, 40) * H, "rate", {**c, "rating": rng.choice(RATINGS)}))
    actions.append((NOW - 9.2 * H, "forged", {}))
    t = NOW - 15 * 24 * H
    while t < NOW:
        actions.append((t, "sweep", {}))
        t += H
    return sorted((a for a in actions if a[0] <= NOW), key=lambda a: a[0])


def play(app: App, rng: random.Random) -> None:
    wf, store = app.workflow, app.store
    refs: dict[int, str] = {}
    for at, kind, c in plan(rng):
        with store.transaction():
            if kind == "sweep":
                wf.sweep(at)
            elif kind == "arrive":
                seen = at + timedelta(seconds=rng.uniform(15, 240))  # the next IMAP poll or IDLE wake-up
                outcome = wf.receive(raw_mail(c["address"], c["name"], c["subject"], c["body"], at), at, seen)
                refs[c["i"]] = outcome.ref
            elif kind == "answer" and c["i"] in refs:
                row = store.complaint(refs[c["i"]])
                if row["status"] in ("open", "waiting_customer"):
                    staff = app.cfg.team(row["level"])[0]
                    text = ("Bonjour, nous avons contacté le vendeur et revenons vers vous très vite."
                            if row["lang"] == "fr" else "Hello, we have contacted the seller and will be back soon.")
                    wf.receive(raw_mail(staff, "", f"Re: [{refs[c['i']]}] {c['subject']}", text, at, AUTH), at, at)
            elif kind == "resolve" and c["i"] in refs:
                wf.resolve(refs[c["i"]], "Le vendeur vous rembourse intégralement.", "cli", at)
            elif kind == "rate" and c["i"] in refs:
                wf.receive(raw_mail(c["address"], c["name"], f"Re: [{refs[c['i']]}] {c['subject']}",
                                    c["rating"], at), at, at)
            elif kind == "forged":
                ref = next(iter(refs.values()))
                wf.receive(raw_mail("resolution@imolocale.example", "Équipe résolution",
                                    f"Re: [{ref}] urgent", "#resolve\nRemboursement validé.", at,
                                    "mx.google.com; dkim=none; spf=softfail; dmarc=fail header.from=imolocale.example"),
                           at, at)


def aftermath(app: App) -> None:
    """What the outbox, the quarantine and the sellers look like that morning."""
    store = app.store
    with store.transaction():
        store.conn.execute("UPDATE outbox SET status = 'sent', attempts = 1, sent_at = created_at")
        bad = store.one("SELECT id FROM outbox WHERE rcpt LIKE '%adresse-invalide%' AND kind = 'ack'")
        if bad:
            store.update("outbox", bad["id"], {"status": "failed", "sent_at": None, "last_error":
                         "recipients refused: [550] 5.1.1 <p.garnier@adresse-invalide.example>: user unknown"})
        late = store.one("SELECT id FROM outbox WHERE audience = 'staff' ORDER BY id DESC LIMIT 1")
        store.update("outbox", late["id"], {"status": "queued", "attempts": 2, "sent_at": None,
                                            "next_attempt_at": iso(NOW + 2 * H),
                                            "last_error": "451 4.7.1 Try again later"})
        store.insert("quarantine", {"at": iso(NOW - 4.6 * H), "folder": "maildesk/quarantine", "message_id": None,
                                    "sha256": "9f" * 32, "sender": "scanner@copieur-agence.example",
                                    "subject": "Numérisation 0042", "size": 31_457_280,
                                    "reason": "processing failed: malformed MIME structure (no closing boundary)"})
        if store.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sellers'"):
            store.insert("sellers", {"id": "lumiere-deco", "shop_name": "Lumière Déco",
                                     "address": "contact@lumiere-deco.example", "status": "flagged",
                                     "status_reason": "3 sollicitations sans réponse en 90 jours",
                                     "status_by": "maildesk", "status_at": iso(NOW - 30 * H),
                                     "created_at": iso(NOW - 90 * 24 * H), "updated_at": iso(NOW - 30 * H)})
            for days in (40, 21, 3):
                store.insert("seller_strikes", {"seller_id": "lumiere-deco", "kind": "unanswered",
                                                "actor": "maildesk", "at": iso(NOW - days * 24 * H)})


def screenshot(html: Path, png: Path, height: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium not found: apt-get install -y chromium (or run with --no-png)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=900,{height}",
                        html.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def repeatable_references(seed: int) -> None:
    """Same references on every run, so the committed example only changes when the digest does."""
    rng = random.Random(seed)
    refs.secrets = type("Seeded", (), {"choice": staticmethod(rng.choice)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"), help="where to write digest-example.*")
    ap.add_argument("--no-png", action="store_true", help="skip the Chromium screenshot")
    ap.add_argument("--height", type=int, default=2080, help="screenshot height in pixels")
    args = ap.parse_args()
    out = Path(args.out)
    random.seed(24)
    repeatable_references(24)
    with tempfile.TemporaryDirectory() as tmp:
        app = App(config(Path(tmp)))
        try:
            play(app, random.Random(11))
            aftermath(app)
            doc = digest.build(app.store, app.cfg, NOW)
            rendered = digest.render(app.templates, app.cfg, doc)
        finally:
            app.close()
    (out / "digest-example.html").write_text(rendered.html)
    (out / "digest-example.txt").write_text(f"Subject: {rendered.subject}\n\n{rendered.text}")
    print(f"wrote {out / 'digest-example.html'} and {out / 'digest-example.txt'}")
    if not args.no_png:
        screenshot(out / "digest-example.html", out / "digest-example.png", args.height)
        print(f"wrote {out / 'digest-example.png'}")


if __name__ == "__main__":
    main()
