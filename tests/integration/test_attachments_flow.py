"""Attachments end to end (issue 16), through real Dovecot and SMTP: the evidence reaches the
people who decide, and what Gmail would refuse is never queued."""
from __future__ import annotations

import email
from email import policy as email_policy

from maildesk.core.refs import tag
from tests.integration.test_intake import ref_of
from tests.integration.test_staff import CS, staff_reply
from tests.support import mail

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 160  # a 40 KB "JPEG"


def with_files(raw: bytes, *files: tuple[str, str, bytes]) -> bytes:
    msg = email.message_from_bytes(raw, policy=email_policy.default)
    for name, ctype, data in files:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def files_of(msg) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in msg.iter_attachments()}


def test_the_photo_reaches_level_1_and_after_escalation_level_2(desk):
    desk.deliver(with_files(mail(subject="Colis arrivé cassé", body="Le vase est cassé, photo jointe."),
                            ("casse.jpg", "image/jpeg", PHOTO)))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    [note] = desk.sent(to=CS)
    assert files_of(note) == {"casse.jpg": PHOTO}
    text = note.get_body(("plain",)).get_content()
    assert "casse.jpg — image/jpeg, 40 Ko" in text and "jointe à ce message" in text
    assert files_of(ack) == {}  # the customer is not sent their own photo back
    desk.sink.clear()
    ref = ref_of(ack)
    desk.deliver(staff_reply(note, "#escalate"))
    desk.once()
    [level2] = desk.sent(to="resolution@imolocale.test")
    assert tag(ref) in level2["Subject"] and files_of(level2) == {"casse.jpg": PHOTO}


def test_the_staff_label_reaches_the_customer_and_a_note_keeps_its_file(desk):
    desk.deliver(mail(body="Je veux renvoyer l'article."))
    desk.once()
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    label = b"%PDF-1.4 etiquette " + b"x" * 3000
    desk.deliver(with_files(staff_reply(note, "Voici l'étiquette de retour."), ("etiquette-retour.pdf", "application/pdf", label)))
    desk.once()
    [relay] = desk.sent(to="camille@example.fr")
    assert files_of(relay) == {"etiquette-retour.pdf": label}
    assert "etiquette-retour.pdf" in relay.get_body(("plain",)).get_content()
    desk.sink.clear()
    desk.deliver(with_files(staff_reply(note, "#note interne"), ("interne.pdf", "application/pdf", b"%PDF secret")))
    desk.once()
    assert desk.sent(to="camille@example.fr") == []


def test_an_exe_is_kept_and_listed_not_forwarded(desk):
    desk.deliver(with_files(mail(body="Voici le programme."), ("outil.exe", "application/octet-stream", b"MZ" + b"\0" * 100)))
    desk.once()
    [note] = desk.sent(to=CS)
    assert files_of(note) == {}
    text = note.get_body(("plain",)).get_content()
    assert "outil.exe" in text and "Gmail refuse ce type de fichier" in text and "maildesk attachment" in text
