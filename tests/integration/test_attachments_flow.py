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


def mime_tree(msg, depth: int = 0) -> str:
    """The message's parts, one a line: type, disposition, filename, Content-ID, decoded size."""
    line = "  " * depth + msg.get_content_type()
    if msg.is_multipart():
        return "\n".join([line] + [mime_tree(p, depth + 1) for p in msg.iter_parts()])
    facts = [msg.get_content_disposition() or "-", msg.get_filename() or "-", msg["Content-ID"] or "-",
             f"{len(msg.get_payload(decode=True) or b'')} B"]
    return line + "  " + "  ".join(facts)


def files_of(msg) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in msg.iter_attachments()}


def test_the_photo_reaches_level_1_and_after_escalation_level_2(desk):
    desk.deliver(with_files(mail(subject="Colis arrivé cassé", body="Le vase est cassé, photo jointe."),
                            ("casse.jpg", "image/jpeg", PHOTO)))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    [note] = desk.sent(to=CS)
    assert files_of(note) == {"casse.jpg": PHOTO}
    print(f"\nMIME staff notification ({len(note.as_bytes())} B):\n{mime_tree(note)}")
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
    print(f"\nMIME relay ({len(relay.as_bytes())} B):\n{mime_tree(relay)}")
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


# --- issue 16 items 1, 2, 4: complete and proven --------------------------------------------------

import io
import zipfile
from datetime import timedelta
from email.message import EmailMessage

from tests.integration.conftest import body
from tests.integration.test_clock import H, T0, once_at
from tests.support import SUPPORT

RES, CX = "resolution@imolocale.test", "cx@imolocale.test"
LOGO = b"\x89PNG\r\n\x1a\n" + b"\0" * 3000  # a signature's logo, 3 KB


def parts(msg) -> list[tuple[str, str | None, str | None, str | None]]:
    """Every leaf part: (type, disposition, filename, Content-ID)."""
    return [(p.get_content_type(), p.get_content_disposition(), p.get_filename(), p["Content-ID"])
            for p in msg.walk() if not p.is_multipart()]


def html_mail(sender: str, name: str, subject: str, text: str, cid: str, image: bytes, image_type: str,
              **headers) -> EmailMessage:
    """A Gmail-like mail: text + HTML with an image shown by `cid:`, in multipart/related."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"{name} <{sender}>", SUPPORT, subject
    msg["Message-ID"] = f"<{abs(hash((sender, subject, text)))}@{sender.rpartition('@')[2]}>"
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(text)
    msg.add_alternative(f'<div dir="ltr">{text}<br><img src="cid:{cid}" width="120"></div>', subtype="html")
    html = msg.get_payload()[1]
    maintype, _, subtype = image_type.partition("/")
    html.add_related(image, maintype=maintype, subtype=subtype, cid=f"<{cid}>", filename=f"{cid.split('@')[0]}.{subtype}",
                     disposition="inline")
    return msg


def test_the_clock_carries_the_complaints_files_to_each_new_team(desk):
    desk.deliver(with_files(mail(subject="Colis cassé", body="Photo jointe."), ("casse.jpg", "image/jpeg", PHOTO)),
                 msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=1))
    [level2] = [m for m in once_at(desk, T0 + 24 * H + timedelta(minutes=1)) if RES in str(m["To"])]
    assert files_of(level2) == {"casse.jpg": PHOTO} and "24 heures" in body(level2)
    [level3] = [m for m in once_at(desk, T0 + 48 * H + timedelta(minutes=1)) if CX in str(m["To"])]
    assert files_of(level3) == {"casse.jpg": PHOTO}


def test_assign_tells_the_new_owner_with_the_complaints_files(desk):
    desk.deliver(with_files(mail(body="Photo jointe."), ("casse.jpg", "image/jpeg", PHOTO)))
    desk.once()
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#assign paul@imolocale.test"))
    desk.once()
    [told] = desk.sent(to="paul@imolocale.test")
    assert files_of(told) == {"casse.jpg": PHOTO} and "cs@imolocale.test" in body(told)
    assert desk.sent(to="camille@example.fr") == []
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#assign cs@imolocale.test"))  # taking it oneself: no mail
    desk.once()
    assert desk.sent() == []


def test_an_embedded_image_stays_inline_with_its_content_id_for_staff(desk):
    msg = html_mail("camille@example.fr", "Camille Martin", "Colis abîmé", "Voici le carton :", "carton@mail.example.fr",
                    PHOTO, "image/jpeg")
    desk.deliver(msg.as_bytes())
    desk.once()
    [note] = desk.sent(to=CS)
    [shown] = [p for p in note.walk() if p["Content-ID"]]
    assert shown["Content-ID"] == "<carton@mail.example.fr>" and shown.get_content_disposition() == "inline"
    assert shown.get_payload(decode=True) == PHOTO and shown.get_content_type() == "image/jpeg"
    print(f"\nMIME staff notification, customer's embedded image:\n{mime_tree(note)}")


def test_ask_and_resolve_relay_the_staff_files_a_note_keeps_them(desk):
    desk.deliver(mail(body="Je veux renvoyer l'article."))
    desk.once()
    [note] = desk.sent(to=CS)

    def answered(text: str, name: str, data: bytes):
        desk.sink.clear()
        desk.deliver(with_files(staff_reply(note, text), (name, "application/pdf", data)))
        desk.once()
        [sent] = desk.sent(to="camille@example.fr")
        return sent

    form = b"%PDF-1.4 formulaire " + b"f" * 2000
    asked = answered("#ask Remplissez ce formulaire, s'il vous plaît.", "formulaire.pdf", form)
    assert files_of(asked) == {"formulaire.pdf": form} and "formulaire" in body(asked)
    receipt = b"%PDF-1.4 avoir " + b"a" * 2000
    resolved = answered("#resolve Remboursement effectué, voici l'avoir.", "avoir.pdf", receipt)
    assert files_of(resolved) == {"avoir.pdf": receipt} and "Remboursement" in body(resolved)
    assert desk.rows("SELECT status FROM complaints")[0]["status"] == "resolved"


def test_a_gmail_signature_logo_is_not_relayed_the_attached_label_is(desk):
    desk.deliver(mail(body="Je veux renvoyer l'article."))
    desk.once()
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    staff = html_mail(CS, "Julie (service client)", f"Re: {note['Subject']}", "Voici l'étiquette de retour.",
                      "ii_logo123@mail.gmail.com", LOGO, "image/png", In_Reply_To=note["Message-ID"],
                      References=note["Message-ID"])
    label = b"%PDF-1.4 etiquette " + b"x" * 3000
    staff.add_attachment(label, maintype="application", subtype="pdf", filename="etiquette.pdf")
    desk.deliver(staff.as_bytes())
    desk.once()
    [relay] = desk.sent(to="camille@example.fr")
    assert files_of(relay) == {"etiquette.pdf": label}
    assert not any(cid for *_, cid in parts(relay)) and "logo" not in relay.as_string()
    print(f"\nMIME relay of a Gmail-like staff mail (logo dropped):\n{mime_tree(relay)}")


def test_an_inline_photo_the_html_does_not_show_is_relayed(desk):
    """Apple Mail sends an attached photo as an inline part; no `cid:` shows it: it is the staff's
    photo, not a signature, and it goes."""
    desk.deliver(mail(body="Je veux renvoyer l'article."))
    desk.once()
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    staff = email.message_from_bytes(staff_reply(note, "Voici la photo du colis repris."), policy=email_policy.default)
    staff.add_attachment(LOGO, maintype="image", subtype="png", filename="colis.png", disposition="inline",
                         cid="<photo1@example>")
    desk.deliver(staff.as_bytes())
    desk.once()
    [relay] = desk.sent(to="camille@example.fr")
    assert files_of(relay) == {"colis.png": LOGO}


def big_photo(n: int, size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes([n]) * (size - 4)


def test_30_mb_of_photos_staff_get_what_fits_under_the_limit_and_the_rest_listed(desk):
    # 30 MB of photos is ~41 MB on the wire (base64): Gmail receives up to 50 MB; maildesk reads it whole
    # under [mailbox] max_message_mb = 50 (default 10: read part by part, 10 MB of files kept in all:
    # one photo); each photo is under [storage] attachment_max_mb (10)
    desk.write_config(mailbox={"max_message_mb": 50})
    photos = [(f"photo{n}.jpg", "image/jpeg", big_photo(n, 6 * 1024 * 1024)) for n in range(1, 6)]
    desk.deliver(with_files(mail(subject="Carton écrasé", body="Cinq photos."), *photos))
    desk.once()
    [note] = desk.sent(to=CS)
    attached = files_of(note)
    assert list(attached) == ["photo1.jpg", "photo2.jpg", "photo3.jpg"]
    assert all(attached[name] == data for name, _, data in photos[:3])
    text = body(note)
    assert text.count("le message dépasserait la limite de 25 Mo") == 2 and "photo5.jpg" in text
    limit = 25 * 1024 * 1024
    queued = desk.rows("SELECT kind, length(raw) AS size FROM outbox")
    assert queued and max(r["size"] for r in queued) <= limit
    assert max(len(m.data) for m in desk.sink.messages) <= limit
    print(f"\nLIMIT 25 MB: largest queued {max(r['size'] for r in queued)} bytes, "
          f"{len(attached)} of 5 photos attached")


def test_30_mb_of_photos_under_the_default_mailbox_limit_keeps_what_is_read(desk):
    """[mailbox] max_message_mb = 10: the mail is read part by part, 10 MB of files kept in all."""
    photos = [(f"photo{n}.jpg", "image/jpeg", big_photo(n, 6 * 1024 * 1024)) for n in range(1, 6)]
    desk.deliver(with_files(mail(subject="Carton écrasé", body="Cinq photos."), *photos))
    desk.once()
    [note] = desk.sent(to=CS)
    assert list(files_of(note)) == ["photo1.jpg"]
    assert body(note).count("non conservée") == 4
    print(f"\nDEFAULTS: {len(note.as_bytes())} bytes, 1 of 5 photos kept and attached")


def test_the_limit_comes_from_the_config(desk):
    desk.write_config(attachments={"max_message_mb": 2})
    photos = [(f"p{n}.jpg", "image/jpeg", big_photo(n, 700 * 1024)) for n in range(1, 4)]
    desk.deliver(with_files(mail(body="Trois photos."), *photos,
                            ("video.mov", "video/quicktime", big_photo(9, 1600 * 1024))))
    desk.once()
    [note] = desk.sent(to=CS)
    assert list(files_of(note)) == ["p1.jpg", "p2.jpg"]
    text = body(note)
    assert "p3.jpg" in text and "dépasserait la limite de 2 Mo" in text and "trop lourde pour un e-mail (limite 2 Mo)" in text
    assert max(len(m.data) for m in desk.sink.messages) <= 2 * 1024 * 1024
    print(f"\nLIMIT 2 MB: largest sent {max(len(m.data) for m in desk.sink.messages)} bytes, 2 of 3 photos attached")


def zipped(**members: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_zip_holding_a_script_or_a_program_is_held_and_the_customer_told_in_the_ack(desk):
    desk.deliver(with_files(mail(body="Les pièces."), ("scripts.zip", "application/zip", zipped(**{"lire.js": b"x"})),
                            ("prog.zip", "application/zip", zipped(**{"bin/setup.exe": b"MZ"})),
                            ("casse.jpg", "image/jpeg", PHOTO)))
    desk.once()
    [note] = desk.sent(to=CS)
    assert files_of(note) == {"casse.jpg": PHOTO}
    text = body(note)
    assert "(lire.js)" in text and "(bin/setup.exe)" in text
    [ack] = desk.sent(to="camille@example.fr")
    assert files_of(ack) == {}
    assert ("Nous n'avons pas pu transmettre scripts.zip, prog.zip (type de fichier refusé par la messagerie) : "
            "envoyez plutôt une photo ou un PDF") in " ".join(body(ack).split())
    [ev] = desk.rows("SELECT detail FROM events WHERE kind = 'files_held'")
    assert "scripts.zip" in ev["detail"] and "blocked" in ev["detail"]


def test_a_later_customer_file_held_gets_one_plain_mail_within_the_budget(desk):
    desk.deliver(mail(body="Bonjour."))
    desk.once()
    [ack] = desk.sent(to="camille@example.fr")
    desk.sink.clear()
    for n in range(6):
        desk.deliver(with_files(mail(subject=f"Re: {ack['Subject']}", body=f"Voici le fichier {n}."),
                                (f"setup{n}.exe", "application/octet-stream", b"MZ" + b"\0" * 50)))
    desk.once()
    told = desk.sent(to="camille@example.fr")
    assert told and len(told) < 6  # [policy] max_auto_replies_per_hour stops them
    assert "Nous n'avons pas pu transmettre setup0.exe (type de fichier refusé par la messagerie)" in " ".join(body(told[0]).split())
    assert desk.rows("SELECT count(*) AS n FROM events WHERE kind = 'auto_mail_suppressed'")[0]["n"] >= 1
    assert len(desk.rows("SELECT * FROM events WHERE kind = 'files_held'")) == 6


def test_a_staff_file_held_the_customer_gets_the_text_the_staff_member_is_told(desk):
    desk.deliver(mail(body="Je veux renvoyer l'article."))
    desk.once()
    [note] = desk.sent(to=CS)
    desk.sink.clear()
    label = b"%PDF-1.4 " + b"x" * 1000
    desk.deliver(with_files(staff_reply(note, "Voici l'étiquette et l'outil."), ("etiquette.pdf", "application/pdf", label),
                            ("outil.exe", "application/octet-stream", b"MZ" + b"\0" * 50)))
    desk.once()
    [relay] = desk.sent(to="camille@example.fr")
    assert files_of(relay) == {"etiquette.pdf": label} and "Voici l'étiquette" in body(relay)
    [told] = desk.sent(to=CS)
    text = " ".join(body(told).split())
    assert "outil.exe : type de fichier refusé par la messagerie" in text and "Le client a reçu votre texte sans lui" in text
    assert "etiquette.pdf" not in text.split("Le client a reçu")[0]  # only what stayed is named
    code, shown = desk.cli_here("show", ref_of(relay))
    assert code == 0 and "files_held" in shown and "outil.exe" in shown


def test_one_bad_file_hurts_only_itself(desk):
    desk.write_config(storage={"attachment_max_mb": 0.05})  # bytes over 50 KB are not kept
    desk.deliver(with_files(mail(body="Mes fichiers."), ("vide.pdf", "application/pdf", b""),
                            ("abime.jpg", "image/jpeg", b"\xff\xd8 not really a jpeg"),
                            ("gros.jpg", "image/jpeg", big_photo(3, 80 * 1024)),
                            ("casse.jpg", "image/jpeg", PHOTO)))
    desk.once()
    [note] = desk.sent(to=CS)
    assert set(files_of(note)) >= {"casse.jpg", "abime.jpg"}
    text = body(note)
    assert "gros.jpg" in text and "non conservée" in text and "vide.pdf" in text


def test_a_file_that_fails_to_prepare_is_listed_and_the_mail_goes(desk, monkeypatch):
    from maildesk.inbound import archives
    real = archives.listing

    def broken(name, content):
        if name == "piege.zip":
            raise RuntimeError("boom")
        return real(name, content)

    monkeypatch.setattr(archives, "listing", broken)
    desk.deliver(with_files(mail(body="Deux fichiers."), ("piege.zip", "application/zip", zipped(a=b"a")),
                            ("casse.jpg", "image/jpeg", PHOTO)))
    desk.run_once()
    [note] = desk.sent(to=CS)
    assert files_of(note) == {"casse.jpg": PHOTO}
    assert "piege.zip" in body(note) and "RuntimeError" in body(note)
