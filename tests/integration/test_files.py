"""Stored files end to end (issue 16 items 4, 5, 7): what `maildesk attachment` lists and writes
out, bad attachments stored as they came, the same bytes kept once, a 10,000-part message."""
from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from tests.support import mail

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 160  # a 40 KB "JPEG"
PDF = b"%PDF-1.4\n" + b"0" * 2000


def _part(headers: str, encoded: str) -> str:
    return f"--B\r\n{headers}\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"


def _mixed(sender: str, subject: str, msgid: str, parts: list[str], text: str = "Bonjour, voici les pièces.") -> bytes:
    head = (f"From: {sender}\r\nTo: support@imolocale.test\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            f"--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n")
    return (head + "".join(parts) + "--B--\r\n").encode()


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def _ref(desk, sender: str) -> str:
    [row] = desk.rows("SELECT ref FROM complaints WHERE customer_addr = ?", sender)
    return row["ref"]


def test_bad_attachments_are_kept_as_they_came_listed_and_block_nothing(desk):
    desk.write_config(storage={"attachment_max_mb": 0.05})  # 51 KB: the 40 KB photo fits, the 60 KB PDF does not
    damaged = _b64(PHOTO[:3000])[:-10] + "!!*\r\n"  # junk characters and a cut last line
    desk.deliver(_mixed("Ana <ana@example.fr>", "Colis arrivé cassé", "<bad@example.fr>", [
        _part('Content-Type: image/jpeg; name="photo.jpg"\r\nContent-Disposition: attachment; filename="photo.jpg"',
              _b64(PHOTO)),
        _part('Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="abime.jpg"', damaged),
        _part('Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="vide.pdf"', ""),
        _part('Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="facture.jpg"', _b64(PDF)),
        _part('Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="setup.jpg"',
              _b64(b"MZ\x90\x00" + b"\x00" * 500)),
        _part('Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="gros.pdf"',
              _b64(b"%PDF-1.7\n" + b"1" * 60_000)),
    ]))
    desk.deliver(mail(sender="bruno@example.fr", name="Bruno", subject="Pas reçu", message_id="<ok@example.fr>",
                      body="Ma commande n'est pas arrivée."))
    desk.once()

    assert desk.sent(to="ana@example.fr") and desk.sent(to="bruno@example.fr")  # both acknowledged
    ref = _ref(desk, "ana@example.fr")
    done = desk.cli("attachment", ref, "--json")
    assert done.returncode == 0, done.stderr
    listed = {f["filename"]: f for f in json.loads(done.stdout)["files"]}
    assert list(listed) == ["photo.jpg", "abime.jpg", "vide.pdf", "facture.jpg", "setup.jpg", "gros.pdf"]
    assert listed["photo.jpg"]["problem"] is None and listed["photo.jpg"]["kept"] and listed["photo.jpg"]["size"] == len(PHOTO)
    assert listed["photo.jpg"]["from"] == "customer"
    assert listed["abime.jpg"]["problem"] == "damaged base64: stored as received" and listed["abime.jpg"]["kept"]
    assert listed["vide.pdf"]["problem"] == "empty file" and listed["vide.pdf"]["size"] == 0
    assert listed["facture.jpg"]["problem"] == "declared image/jpeg, the bytes are a PDF"
    assert listed["setup.jpg"]["problem"] == "declared image/jpeg, the bytes are a Windows program (EXE)"
    assert listed["gros.pdf"]["kept"] is False
    assert listed["gros.pdf"]["state"] == "not kept: over [storage] attachment_max_mb"

    text = desk.cli("attachment", ref).stdout
    assert "photo.jpg  image/jpeg  40 KB  from customer" in text and "[kept]" in text
    assert "[kept; damaged base64: stored as received]" in text
    assert "[not kept: over [storage] attachment_max_mb]" in text

    shown = json.loads(desk.cli("show", ref, "--json").stdout)
    assert [f["filename"] for f in shown["files"]] == list(listed)
    assert "Files (" in desk.cli("show", ref).stdout

    out = Path(tempfile.mkdtemp(prefix="maildesk-out-"))
    # the damaged file is written out as it came: the base64 text, not a guess at the photo
    first = desk.cli("attachment", ref, "2", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert Path(first.stdout.strip()).read_bytes() == damaged.encode()
    refused = desk.cli("attachment", ref, "6", "--out", str(out))
    assert refused.returncode == 1 and "over [storage] attachment_max_mb" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    beyond = desk.cli("attachment", ref, "7", "--out", str(out))
    assert beyond.returncode == 1 and "numbered 1 to 6" in beyond.stderr


def test_a_file_is_written_out_under_its_safe_name_never_over_another_never_outside(desk):
    hostile = [("../../x.txt", b"one"), ("/etc/passwd", b"two"), ("..\\..\\win.ini", b"three")]
    desk.deliver(_mixed("ana@example.fr", "Pièces", "<names@example.fr>", [
        _part(f'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="{name}"', _b64(data))
        for name, data in hostile]))
    desk.once()
    ref = _ref(desk, "ana@example.fr")
    with desk.db() as conn:  # a row written by an older maildesk, or by hand: the name is made safe again
        conn.execute("UPDATE attachments SET filename = '../../../tmp/evil' WHERE filename = 'win.ini'")
    out = Path(tempfile.mkdtemp(prefix="maildesk-out-")) / "here"
    out.mkdir()
    written = []
    for n in ("1", "2", "3", "1"):
        done = desk.cli("attachment", ref, n, "--out", str(out))
        assert done.returncode == 0, done.stderr
        written.append(Path(done.stdout.strip()))
    assert [p.name for p in written] == ["x.txt", "passwd", "evil", "x-1.txt"]
    assert all(p.parent == out for p in written)
    assert sorted(p.name for p in out.iterdir()) == ["evil", "passwd", "x-1.txt", "x.txt"]
    assert (out / "x.txt").read_bytes() == b"one" == (out / "x-1.txt").read_bytes()
    assert not (out.parent / "x.txt").exists()

    unknown = desk.cli("attachment", "IMO-ZZZZZZ")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "maildesk: no complaint IMO-ZZZZZZ"


def test_the_same_photo_sent_three_times_is_stored_once(desk):
    for n, who in enumerate(("ana@example.fr", "bruno@example.fr", "ana@example.fr")):
        desk.deliver(_mixed(who, f"Cassé {n}", f"<same{n}@example.fr>", [
            _part(f'Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="IMG_{n}.jpg"', _b64(PHOTO))]))
    desk.once()
    assert len(desk.rows("SELECT id FROM attachments")) == 3
    [row] = desk.rows("SELECT size FROM files")
    assert row["size"] == len(PHOTO)


def test_a_10000_part_message_is_answered_with_its_first_parts_listed_and_the_rest_counted(desk):
    photo = _b64(PHOTO[:200])
    parts = [_part(f'Content-Type: image/jpeg; name="p{i}.jpg"', photo) for i in range(9_999)]
    desk.deliver(_mixed("ana@example.fr", "Dix mille photos", "<many@example.fr>", parts))
    desk.deliver(mail(sender="bruno@example.fr", name="Bruno", subject="Pas reçu", message_id="<ok2@example.fr>",
                      body="Ma commande n'est pas arrivée."))
    desk.once()
    assert desk.sent(to="ana@example.fr") and desk.sent(to="bruno@example.fr")
    ref = _ref(desk, "ana@example.fr")
    [raw] = desk.rows("SELECT length(raw) AS n FROM messages WHERE message_id = '<many@example.fr>'")
    assert raw["n"] > 2_000_000  # the whole message kept as it came
    doc = json.loads(desk.cli("attachment", ref, "--json").stdout)
    assert len(doc["files"]) == 998 and doc["files"][0]["filename"] == "p0.jpg"
    [note] = doc["parts_not_read"]
    assert note["note"].startswith("9,001 more parts not read")
    assert "9,001 more parts not read" in desk.cli("attachment", ref).stdout
    assert len(desk.rows("SELECT sha256 FROM files")) == 1


def test_a_merged_complaint_says_where_its_files_went_and_who_sent_each(desk):
    from email.message import EmailMessage
    desk.deliver(_mixed("ana@example.fr", "Colis cassé", "<m1@example.fr>", [
        _part('Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="avant.jpg"', _b64(PHOTO))]))
    desk.once()
    first = _ref(desk, "ana@example.fr")
    [notify] = desk.sent(to="cs@imolocale.test")
    note = EmailMessage()  # a staff note carrying a file: its sender is named
    note["From"], note["To"], note["Subject"] = "cs@imolocale.test", "support@imolocale.test", f"Re: {notify['Subject']}"
    note["Message-ID"], note["In-Reply-To"] = "<note1@imolocale.test>", notify["Message-ID"]
    note.set_content("#note le transporteur a envoyé son constat")
    note.add_attachment(PDF, maintype="application", subtype="pdf", filename="constat.pdf")
    desk.deliver(note.as_bytes())
    desk.deliver(_mixed("ana@example.fr", "Autre colis", "<m2@example.fr>", [
        _part('Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="facture.pdf"', _b64(PDF))]))
    desk.once()
    [second] = [r["ref"] for r in desk.rows("SELECT ref FROM complaints WHERE ref != ?", first)]
    merged = desk.cli("merge", first, second)
    assert merged.returncode == 0, merged.stderr

    text = desk.cli("attachment", first).stdout
    assert text.splitlines()[0] == f"{first} was merged into {second}: its files are listed there"
    doc = json.loads(desk.cli("attachment", first, "--json").stdout)
    assert doc["ref"] == second and doc["merged_into"] == second
    who = {f["filename"]: f["from"] for f in doc["files"]}
    assert who["avant.jpg"] == "customer" and who["facture.pdf"] == "customer"
    assert who["constat.pdf"].startswith("note by ")
    [row] = desk.rows("SELECT count(*) AS n FROM files")
    assert row["n"] == 2  # the PDF came twice (note and customer): stored once


def test_a_large_messages_file_left_on_the_server_is_listed_and_refused_in_one_sentence(desk):
    import random
    desk.write_config(mailbox={"max_message_mb": 1})
    video = random.Random(3).randbytes(1_500_000)
    desk.deliver(_mixed("ana@example.fr", "Vidéo du colis", "<big@example.fr>", [
        _part('Content-Type: video/mp4\r\nContent-Disposition: attachment; filename="colis.mp4"', _b64(video))]))
    desk.once()
    ref = _ref(desk, "ana@example.fr")
    [f] = json.loads(desk.cli("attachment", ref, "--json").stdout)["files"]
    assert (f["filename"], f["size"], f["kept"]) == ("colis.mp4", len(video), False)
    assert f["state"] == "left on the server (large message)"
    refused = desk.cli("attachment", ref, "1", "--out", tempfile.mkdtemp())
    assert refused.returncode == 1 and "left on the server (large message)" in refused.stderr
    assert "the original message in the mailbox still has it" in refused.stderr
