"""The customer's evidence reaches the seller with nothing that identifies the customer, and the
seller's files reach the team (issue 16, item 3), through real Dovecot and SMTP. The seller's mail is
read as the sink got it: every header and decoded part, and the photo's EXIF read back with Pillow."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from email import message_from_bytes, policy as email_policy

from PIL import Image

from tests.integration.conftest import body
from tests.integration.test_attachments_flow import files_of, with_files
from tests.integration.test_clock import once_at
from tests.integration.test_intake import ref_of
from tests.integration.test_sellers import CS, CUSTOMER, LUMIERE, T0, H, events, raw_to, registry, to  # noqa: F401
from tests.support import mail

NAME = "Camille Martin"  # tests.support.mail's sender: Camille Martin <camille@example.fr>
GPS, OWNER, ARTIST, MAKE = 0x8825, 0xA430, 0x013B, 0x010F
IDENTIFYING = ("camille", "martin", "example.fr")


def gps_photo() -> bytes:
    """A phone photo as customers send them: GPS position, owner, camera maker, a comment."""
    im = Image.new("RGB", (64, 48), (180, 40, 40))
    exif = Image.Exif()
    exif[MAKE], exif[ARTIST] = "Apple", NAME
    exif.get_ifd(0x8769)[OWNER] = NAME
    exif[GPS] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, comment=CUSTOMER.encode())
    return out.getvalue()


INVOICE = b"%PDF-1.4\n1 0 obj <</Author (Boutique Lumiere) /Title (Facture 784512)>> endobj\n%%EOF\n"
STATEMENT = b"%PDF-1.4\n1 0 obj <</Author (Camille MARTIN) /Title (Releve)>> endobj\n%%EOF\n"


def customer_files(desk, at=T0):
    """Camille's complaint with a GPS photo, an invoice named after her, a statement whose /Author she
    is, an iPhone photo and a note with her address; the staff notification."""
    desk.deliver(with_files(mail(subject="Lampe arrivée cassée", body="Bonjour, commande 784512, la lampe est cassée."),
                            ("colis.jpg", "image/jpeg", gps_photo()),
                            ("facture-Camille-Martin.pdf", "application/pdf", INVOICE),
                            ("releve.pdf", "application/pdf", STATEMENT),
                            ("IMG_0042.HEIC", "image/heic", b"\x00\x00\x00\x18ftypheic" + b"\0" * 2000),
                            ("adresse.txt", "text/plain", f"Livrer à {CUSTOMER}".encode())), msg_time=at)
    sent = once_at(desk, at + timedelta(minutes=1))
    [note] = to(sent, CS)
    return ref_of(note), note


def staff_says(desk, note, text: str, at) -> list:
    desk.deliver(mail(sender=CS, name="Julie", subject=f"Re: {note['Subject']}", body=text,
                      in_reply_to=note["Message-ID"], references=note["Message-ID"]), msg_time=at)
    return once_at(desk, at + timedelta(minutes=1))


def every_text(raw: bytes) -> str:
    """Every header and every decoded part of a mail, binary parts as Latin-1: what a seller can see."""
    msg = message_from_bytes(raw, policy=email_policy.default)
    seen = []
    for part in msg.walk():
        seen += [f"{k}: {v}" for k, v in part.items()]
        if not part.is_multipart():
            seen.append(part.get_payload(decode=True).decode("latin-1"))
    return "\n".join(seen)


def test_the_seller_gets_the_evidence_cleaned_and_the_team_learn_what_stayed(registry):
    desk = registry
    ref, note = customer_files(desk)
    assert len(files_of(note)) == 5  # the team see everything the customer sent
    sent = staff_says(desk, note, "#seller S-1042\nLa lampe est arrivée cassée.", T0 + H)
    [raw] = raw_to(desk, LUMIERE)
    outreach = message_from_bytes(raw, policy=email_policy.default)
    files = files_of(outreach)
    assert sorted(files) == ["colis.jpg", "document-2.pdf"]  # the invoice renamed; the rest withheld
    assert files["document-2.pdf"] == INVOICE
    with Image.open(io.BytesIO(files["colis.jpg"])) as im:
        exif = im.getexif()
        assert im.size == (64, 48) and not exif.get_ifd(GPS) and ARTIST not in exif and MAKE not in exif
        assert not exif.get_ifd(0x8769) and "comment" not in im.info
    seen = every_text(raw).lower()
    assert not [w for w in IDENTIFYING if w in seen]
    assert outreach["Cc"] is None
    text = body(outreach)
    assert "Pièces jointes : colis.jpg (" in text and "document-2.pdf (" in text
    assert "releve" not in text and "HEIC" not in text and "adresse" not in text.lower()

    # the team are told, by name and reason, what the seller was not sent
    [told] = [m for m in to(sent, CS) if "non envoyées" in str(m["Subject"])]
    words = body(told)
    assert "releve.pdf — elle nomme le client" in words and "adresse.txt — elle nomme le client" in words
    assert "IMG_0042.HEIC — photo HEIC/HEIF" in words and "colis.jpg" not in words
    [detail] = [json.loads(r["detail"]) for r in desk.rows(
        "SELECT e.detail FROM events e WHERE e.kind = 'evidence_withheld'")]
    assert [f["filename"] for f in detail["files"]] == ["releve.pdf", "IMG_0042.HEIC", "adresse.txt"]
    assert "seller_contacted" in events(desk, ref)


def test_the_sellers_files_reach_the_team_not_the_customer(registry):
    desk = registry
    ref, note = customer_files(desk)
    staff_says(desk, note, "#seller S-1042", T0 + H)
    [outreach] = to(desk.sent(), LUMIERE)
    label = b"%PDF-1.4 bon de retour " + b"x" * 2000
    theirs = io.BytesIO()
    Image.new("RGB", (30, 30), (0, 90, 200)).save(theirs, "PNG")
    desk.deliver(with_files(mail(sender=LUMIERE, name="Boutique Lumière", subject=f"Re: {outreach['Subject']}",
                                 body="Voici la photo du colis au départ et un bon de retour."),
                            ("depart.png", "image/png", theirs.getvalue()),
                            ("bon-retour.pdf", "application/pdf", label)), msg_time=T0 + 2 * H)
    sent = once_at(desk, T0 + 2 * H + timedelta(minutes=1))
    assert to(sent, CUSTOMER) == []
    [answer] = to(sent, CS)
    assert "Réponse du vendeur" in str(answer["Subject"])
    assert files_of(answer) == {"depart.png": theirs.getvalue(), "bon-retour.pdf": label}
    assert "depart.png — image/png" in body(answer) and "jointe à ce message" in body(answer)


def test_a_follow_up_sends_only_new_files_and_a_reminder_none(registry):
    desk = registry
    ref, note = customer_files(desk)
    staff_says(desk, note, "#seller S-1042", T0 + H)
    staff_says(desk, note, "#contact-seller Avez-vous pu regarder ?", T0 + 2 * H)
    first, again = [message_from_bytes(r, policy=email_policy.default) for r in raw_to(desk, LUMIERE)]
    assert len(files_of(first)) == 2 and files_of(again) == {}  # the seller has them already
    assert "Pièce" not in body(again)

    second = io.BytesIO()
    Image.new("RGB", (20, 20)).save(second, "JPEG")
    desk.deliver(with_files(mail(subject=f"Re: [{ref}] Lampe", body=f"Une autre photo. [{ref}]"),
                            ("dos-du-colis.jpg", "image/jpeg", second.getvalue())), msg_time=T0 + 3 * H)
    once_at(desk, T0 + 3 * H + timedelta(minutes=1))
    staff_says(desk, note, "#contact-seller Le client a envoyé une autre photo.", T0 + 4 * H)
    latest = message_from_bytes(raw_to(desk, LUMIERE)[-1], policy=email_policy.default)
    assert list(files_of(latest)) == ["dos-du-colis.jpg"]

    sent = once_at(desk, T0 + 25 * H + timedelta(minutes=2))  # halfway to the first outreach's deadline
    [reminder] = to(sent, LUMIERE)
    assert "Rappel" in str(reminder["Subject"]) and files_of(reminder) == {}
