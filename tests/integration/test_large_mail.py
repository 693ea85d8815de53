"""Large mail: above [mailbox] max_message_mb (10 MB by default) a message is never fetched
whole. Its structure and header come first, then its text and the attachments that fit
(each at most [storage] attachment_max_mb, max_message_mb in all); the others are recorded
by name, type and size. The complaint is handled as usual and the original stays whole in
the processed folder. (Memory is measured by bench/bench.py --only memory, not here.)"""
from __future__ import annotations

import imaplib
import json
import os
import random
from email.message import EmailMessage


CUSTOMER = "grosse.piece@example.fr"
TEXT = ("Bonjour,\n\nvoici les photos et la vidéo du colis abîmé (commande n° 784512).\n"
        "Le carton était ouvert et la lampe cassée en deux.\n\nMerci de votre aide,\nGrosse Pièce")


def complaint(*attachments: tuple[str, str, bytes], html: bool = True, text: str = TEXT) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Grosse Pièce <{CUSTOMER}>"
    msg["To"] = "support@imolocale.test"
    msg["Subject"] = "Photos du colis abîmé"
    msg["Message-ID"] = f"<large-{os.urandom(6).hex()}@example.fr>"
    msg.set_content(text)
    if html:
        msg.add_alternative(f"<p>{text}</p>", subtype="html")
    for filename, ctype, payload in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def processed_sizes(desk) -> list[int]:
    with desk.dovecot.client() as c:
        c.select_folder("maildesk/processed", readonly=True)
        uids = c.search("ALL")
        return [v[b"RFC822.SIZE"] for v in c.fetch(uids, ["RFC822.SIZE"]).values()] if uids else []


def the_complaint(desk):
    [row] = desk.rows("SELECT * FROM complaints")
    [msg] = desk.rows("SELECT id, body, length(raw) raw_size FROM messages WHERE direction = 'in'")
    atts = desk.rows("SELECT a.filename, a.content_type, a.size, f.content FROM attachments a LEFT JOIN files f ON f.sha256 = a.sha256 "
                     "WHERE a.message_row = ? ORDER BY a.id", msg["id"])
    [event] = desk.rows("SELECT detail FROM events WHERE kind = 'large_message'")
    return row, msg, atts, json.loads(event["detail"])


def test_a_25_mb_complaint_is_opened_with_its_photo_recorded_by_name_and_size(desk):
    photo = blob(18_600_000, 1)  # 25 MB once in base64
    raw = complaint(("colis.jpg", "image/jpeg", photo))
    assert len(raw) > 25_000_000
    desk.deliver(raw)
    desk.once()  # the real `maildesk once`, in its own process

    row, msg, atts, event = the_complaint(desk)
    assert (row["customer_addr"], row["status"], row["order_number"]) == (CUSTOMER, "open", "784512")
    assert msg["body"] == TEXT  # the text whole
    assert msg["raw_size"] < 100_000  # only the header and the text parts are kept
    assert [(a["filename"], a["content_type"], a["size"], a["content"]) for a in atts] == [
        ("colis.jpg", "image/jpeg", len(photo), None)]  # above attachment_max_mb: name and size
    assert event["attachments_omitted"] == [{"name": "colis.jpg", "size": len(photo)}]
    assert event["size"] > 25_000_000 and event["text_parts"] == 2 and not event["text_truncated"]
    [ack] = desk.sent(to=CUSTOMER)
    assert row["ref"] in str(ack["Subject"])
    assert len(desk.sent(to="cs@imolocale.test")) == 1  # the staff notification
    assert desk.folder("INBOX") == 0
    assert processed_sizes(desk) == [len(raw.replace(b"\n", b"\r\n"))]  # the original, whole


def test_attachments_that_fit_are_kept_with_their_content(desk):
    """Under a 2 MB cap, a 300 KB receipt is kept whole; a 3 MB video does not fit and a 1.5 MB
    photo, which would fit alone, finds no room left after the receipt; nothing else is lost."""
    desk.write_config(mailbox={"max_message_mb": 2}, storage={"attachment_max_mb": 1})
    video, receipt, photo = blob(3_000_000, 2), blob(300_000, 3), blob(1_500_000, 4)
    desk.deliver(complaint(("video.mp4", "video/mp4", video), ("facture.pdf", "application/pdf", receipt),
                           ("photo.jpg", "image/jpeg", photo)))
    desk.once()
    row, msg, atts, event = the_complaint(desk)
    assert msg["body"] == TEXT and row["status"] == "open"
    got = {a["filename"]: (a["content_type"], a["size"], a["content"]) for a in atts}
    assert got == {"facture.pdf": ("application/pdf", len(receipt), receipt),
                   "video.mp4": ("video/mp4", len(video), None),
                   "photo.jpg": ("image/jpeg", len(photo), None)}
    assert event["attachments_kept"] == ["facture.pdf"]
    assert len(desk.sent(to=CUSTOMER)) == 1 and desk.folder("maildesk/processed") == 1


def test_a_text_bigger_than_the_cap_is_cut_and_said_so(desk):
    desk.write_config(mailbox={"max_message_mb": 1})
    text = TEXT + "\n\n" + "Le détail de la commande : lampe, abat-jour, ampoule.\n" * 30_000  # ~1.6 MB
    desk.deliver(complaint(("colis.jpg", "image/jpeg", blob(500_000, 5)), html=False, text=text))
    desk.once()
    row, msg, atts, event = the_complaint(desk)
    assert msg["body"].startswith(TEXT) and 900_000 < len(msg["body"].encode()) <= 1024 * 1024
    assert event["text_truncated"] is True
    assert [(a["filename"], a["content"]) for a in atts] == [("colis.jpg", None)]
    assert row["status"] == "open" and len(desk.sent(to=CUSTOMER)) == 1


def test_a_message_that_is_one_big_attachment(desk):
    """No MIME structure at all: the whole body is a PDF. The complaint is opened from the header."""
    desk.write_config(mailbox={"max_message_mb": 1})
    msg = EmailMessage()
    msg["From"] = f"Grosse Pièce <{CUSTOMER}>"
    msg["To"] = "support@imolocale.test"
    msg["Subject"] = "Facture commande 784512"
    msg["Message-ID"] = "<one-part@example.fr>"
    pdf = blob(2_000_000, 6)
    msg.set_content(pdf, maintype="application", subtype="pdf", disposition="attachment", filename="facture.pdf")
    desk.deliver(msg.as_bytes())
    desk.once()
    row, msg_row, atts, event = the_complaint(desk)
    assert row["subject"] == "Facture commande 784512" and row["order_number"] == "784512"
    assert [(a["filename"], a["size"], a["content"]) for a in atts] == [("facture.pdf", len(pdf), None)]
    assert len(desk.sent(to=CUSTOMER)) == 1 and desk.folder("maildesk/processed") == 1


def test_a_server_that_will_not_give_parts_falls_back_to_the_first_bytes(desk):
    desk.write_config(mailbox={"max_message_mb": 1})
    desk.deliver(complaint(("colis.jpg", "image/jpeg", blob(2_000_000, 7))))

    def refuse(client, uid, items):  # the inbox's FETCH of a large message's parts: the server says NO
        raise imaplib.IMAP4.error("BODYSTRUCTURE not available")
    desk.run_once(part_fetch=refuse)
    assert desk.rows("SELECT count(*) n FROM events WHERE kind = 'truncated'")[0]["n"] == 1
    [msg] = desk.rows("SELECT body, length(raw) n FROM messages WHERE direction = 'in'")
    assert msg["body"] == TEXT and msg["n"] <= 1024 * 1024
    assert len(desk.sent(to=CUSTOMER)) == 1 and desk.folder("maildesk/processed") == 1
