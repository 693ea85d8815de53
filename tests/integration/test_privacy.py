"""`maildesk privacy` end to end (issue 17) on real Dovecot, SMTP and the real SQLite file: a
customer with two complaints, a file and a seller outreach is exported (all of it, nothing of
another customer), then erased: their address, name and a sentence of theirs are searched in the
raw bytes of the database, its WAL, the IMAP folders and the log file, and found nowhere."""
from __future__ import annotations

import base64
import json
import zipfile
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest

from maildesk import logs
from maildesk.config import load
from maildesk.service import digest
from maildesk.store.opening import open_store
from tests.integration.test_sellers import CS, CUSTOMER, H, LUMIERE, T0, cli_at, open_complaint, staff_says, to
from tests.integration.test_clock import once_at
from tests.integration.test_intake import ref_of
from tests.support import SUPPORT, mail

NAME = "Camille Martin"
SENTENCE = "Le chat violet a mange la facture numero 77341"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"photo-of-the-broken-lamp" * 50
BOB, BOB_NAME, BOB_SENTENCE = "bob@example.org", "Bob Durand", "Ma bouilloire fuit depuis le premier jour"


def with_photo(text: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"{NAME} <{CUSTOMER}>", SUPPORT, subject
    msg["Date"], msg["Message-ID"] = format_datetime(T0), make_msgid(domain="example.fr")
    msg.set_content(text)
    msg.add_attachment(PHOTO, maintype="image", subtype="png", filename="lampe.png")
    return msg.as_bytes()


@pytest.fixture
def two_customers(desk):
    path = desk.dir / "sellers.csv"
    path.write_text(f"id;shop_name;address;phone\nS-1042;Boutique Lumière;{LUMIERE};\n", encoding="utf-8")
    desk.write_config(logging={"file": "maildesk.log"})
    logs.configure(load(desk.config))
    code, out = cli_at(desk, T0 - 24 * H, "seller", "import", str(path), "--by", "ops")
    assert code == 0, out
    keeper = desk.db()  # a connection left open, as the running daemon's is: the WAL is not
    keeper.execute("SELECT count(*) FROM complaints").fetchall()  # checkpointed away when the CLI closes, it keeps the pages
    first, note = open_complaint(desk, text="Bonjour, ma lampe 784512 n'est jamais arrivée.")
    sent = staff_says(desk, note, "#seller S-1042\nLa cliente n'a jamais reçu la lampe 784512.", T0 + H)
    assert to(sent, LUMIERE)
    desk.deliver(with_photo(f"Bonjour. {SENTENCE}. Voici la photo.", "Facture illisible"), msg_time=T0 + 2 * H)
    [second_note] = to(once_at(desk, T0 + 2 * H + timedelta(minutes=1)), CS)
    second = ref_of(second_note)
    desk.deliver(mail(sender=BOB, name=BOB_NAME, subject="Bouilloire", body=BOB_SENTENCE), msg_time=T0 + 3 * H)
    once_at(desk, T0 + 3 * H + timedelta(minutes=1))
    yield desk, first, second
    keeper.close()
    logs.configure()


def database_bytes(desk) -> dict[str, bytes]:
    """SQLite: the file and its WAL, every byte. PostgreSQL: every live row of every table, the
    search index's words included (old row versions stay in its files until VACUUM reuses the space:
    docs/privacy.md)."""
    if desk.pg is None:
        db = desk.dir / "maildesk.db"
        return {"db": db.read_bytes(), "wal": Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b""}
    chunks = []
    with desk.db() as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall():
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                chunks += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return {"db": b"\n".join(chunks)}


def in_store(counts: dict[str, dict[str, int]], what: str) -> int:
    """How often `what` was found in the database: SQLite's file and its WAL together."""
    return counts["db"][what] + counts.get("wal", {}).get(what, 0)


def files_of(desk) -> dict[str, bytes]:
    found = database_bytes(desk)
    found["log"] = b"".join(p.read_bytes() for p in desk.dir.glob("maildesk.log*"))
    for folder in ("maildesk/processed", "maildesk/quarantine", "INBOX"):
        found[folder] = b"\n".join(desk.dovecot.fetch_all(folder))
    return found


def needles(address: str, name: str, sentence: str) -> dict[str, list[bytes]]:
    return {"address": [address.encode(), address.encode("utf-16-le"), base64.b64encode(address.encode())[:12]],
            "name": [name.encode(), name.encode("utf-16-le")],
            "sentence": [sentence.encode(), sentence.encode("utf-16-le"), base64.b64encode(sentence.encode())[:24]]}


def search(found: dict[str, bytes], address=CUSTOMER, name=NAME, sentence=SENTENCE) -> dict[str, dict[str, int]]:
    return {where: {what: sum(data.lower().count(n.lower()) for n in ns)
                    for what, ns in needles(address, name, sentence).items()} for where, data in found.items()}


def figures(desk) -> dict:
    """The digest's numbers (not its texts): what an erase must leave as they were."""
    store = open_store(load(desk.config), readonly=True)
    try:
        doc = digest.build(store, load(desk.config), T0 + 5 * H)
    finally:
        store.close()

    def numbers(v, path=""):
        if isinstance(v, bool) or isinstance(v, (int, float)):
            yield path, v
        elif isinstance(v, dict):
            for k, x in v.items():
                yield from numbers(x, f"{path}.{k}")
        elif isinstance(v, (list, tuple)):
            yield path + ".len", len(v)
            for i, x in enumerate(v):
                yield from numbers(x, f"{path}[{i}]")
    return dict(numbers(doc))


def bob_rows(desk) -> list:
    return [tuple(r) for r in desk.rows("SELECT c.*, m.subject, m.body, m.raw FROM complaints c JOIN messages m "
                                        "ON m.complaint_id = c.id WHERE c.customer_addr = ? ORDER BY m.id", BOB)]


def test_export_then_erase_leaves_no_byte_of_the_person(two_customers, tmp_path):
    desk, first, second = two_customers
    out = tmp_path / "camille.zip"
    code, text = cli_at(desk, T0 + 4 * H, "privacy", "export", CUSTOMER.upper(), "--out", str(out))
    assert code == 0 and "2 complaint(s)" in text, text
    zf = zipfile.ZipFile(out)
    index = json.loads(zf.read("index.json"))
    names = {e["path"] for e in index["entries"]}
    assert names == set(zf.namelist())
    for ref in (first, second):
        assert f"complaints/{ref}/timeline.json" in names and f"complaints/{ref}/timeline.txt" in names
    emls = [n for n in names if "/sent-by-you/" in n]
    assert len(emls) == 2 and any(SENTENCE.encode() in zf.read(n) for n in emls)
    [photo] = [n for n in names if n.endswith("lampe.png")]
    assert zf.read(photo) == PHOTO
    assert any(n.startswith("mail-to-you/") for n in names)  # the acknowledgements
    assert any(e["what"] == "seller_contacted" for e in json.loads(zf.read("sellers.json")))
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert BOB.encode() not in everything and BOB_SENTENCE.encode() not in everything
    (desk.dir.parent / "privacy-index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))

    before, digest_before, bob_before = search(files_of(desk)), figures(desk), bob_rows(desk)
    assert all(in_store(before, what) for what in ("address", "sentence", "name")), before
    assert before["log"]["address"] and before["maildesk/processed"]["sentence"]

    code, text = cli_at(desk, T0 + 4 * H, "privacy", "erase", CUSTOMER, "--reason", "RGPD art. 17 request")
    assert code == 1  # still open
    code, text = cli_at(desk, T0 + 4 * H, "privacy", "erase", CUSTOMER, "--reason", "RGPD art. 17", "--force",
                        "--by", "dpo")
    assert code == 0 and "2 complaint(s) anonymised" in text, text

    after = search(files_of(desk))
    (desk.dir.parent / "privacy-bytes.json").write_text(json.dumps({"before": before, "after": after}, indent=1))
    assert all(n == 0 for where in after.values() for n in where.values()), after
    assert search(files_of(desk), BOB, BOB_NAME, BOB_SENTENCE)["db"]["sentence"] > 0  # VACUUM wrote it there
    assert bob_rows(desk) == bob_before
    assert figures(desk) == digest_before
    assert desk.rows("SELECT count(*) FROM files")[0][0] == 0
    [audit] = desk.rows("SELECT actor, detail FROM events WHERE kind = 'privacy_erased'")
    assert audit["actor"] == "dpo" and CUSTOMER not in audit["detail"]
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "erased", "Camille@Example.fr")
    assert "erased" in text and "by dpo" in text
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "erased", BOB)
    assert "no erasure" in text


def test_unknown_ambiguous_and_an_erase_killed_halfway(two_customers, tmp_path):
    desk, first, second = two_customers
    out = tmp_path / "nobody.zip"
    code, text = cli_at(desk, T0 + 4 * H, "privacy", "export", "nobody@example.net", "--out", str(out))
    assert code == 0 and "nothing is held" in text
    assert "nothing is held" in json.loads(zipfile.ZipFile(out).read("index.json"))["note"]
    result = desk.cli("privacy", "erase", CS, "--reason", "x")
    assert result.returncode == 1 and "staff address" in result.stderr
    result = desk.cli("privacy", "erase", LUMIERE, "--reason", "x")
    assert result.returncode == 1 and "seller" in result.stderr

    def state() -> list[tuple[bool, bool]]:
        return [(r["customer_addr"].endswith("@erased.invalid"), r["sentence"] == 0) for r in desk.rows(
            "SELECT c.customer_addr, (SELECT count(*) FROM messages m WHERE m.complaint_id = c.id "
            "AND m.subject != '[erased]') AS sentence FROM complaints c WHERE c.ref IN (?, ?) ORDER BY c.id",
            first, second)]

    for kill_at, done in ((2, [False, False]), (3, [True, False])):  # inside the first; between the two
        result = desk.cli("privacy", "erase", CUSTOMER, "--reason", "x", "--force", "--keep-mailbox",
                          env={"MAILDESK_KILL_AT": str(kill_at)})
        assert result.returncode == -9
        assert [a for a, _ in state()] == done
        assert all(a == b for a, b in state())  # each complaint whole or anonymised, never half
    result = desk.cli("privacy", "erase", CUSTOMER, "--reason", "x", "--force", "--keep-mailbox")
    assert result.returncode == 0, result.stderr
    assert state() == [(True, True), (True, True)]
    assert len(desk.rows("SELECT 1 FROM events WHERE kind = 'privacy_erased'")) == 1
    result = desk.cli("privacy", "erase", CUSTOMER, "--reason", "again", "--keep-mailbox")
    assert result.returncode == 0, result.stderr  # nothing left: an erase run twice is harmless


COPIED = "Je confirme tout ce que dit mon voisin, signe la voisine 5521"


def test_a_person_copied_on_another_complaint(two_customers, tmp_path):
    """Camille, in Cc of Bob's complaint, writes on it (stored as issue 16's Cc flow stores it: her
    message on his complaint, her address in its cc_addrs): her export holds her mail there and
    nothing else of Bob's; her erase takes her words and address from Bob's complaint, no more."""
    from maildesk.inbound.parse import parse
    desk, first, second = two_customers
    [bob_ack] = [m for m in desk.sent(BOB)]
    raw = mail(subject=f"Re: {bob_ack['Subject']}", body=COPIED, name=NAME,
               in_reply_to=bob_ack["Message-ID"], references=bob_ack["Message-ID"])
    app = desk.app()
    try:
        bob = app.store.one("SELECT id FROM complaints WHERE customer_addr = ?", BOB)
        with app.store.transaction():
            app.workflow.store_message(bob["id"], parse(raw), raw, "customer", T0 + 4 * H)
            app.store.update("complaints", bob["id"], {"cc_addrs": json.dumps([CUSTOMER.upper()])})
    finally:
        app.close()
    desk.deliver(raw, folder="maildesk/processed", msg_time=T0 + 4 * H)
    [bob_ref] = [r["ref"] for r in desk.rows("SELECT ref FROM complaints WHERE customer_addr = ?", BOB)]
    assert desk.rows("SELECT count(*) FROM messages m JOIN complaints c ON c.id = m.complaint_id "
                     "WHERE c.ref = ? AND m.from_addr = ?", bob_ref, CUSTOMER)[0][0] == 1
    out = tmp_path / "camille.zip"
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "export", CUSTOMER, "--out", str(out))
    zf = zipfile.ZipFile(out)
    copied = [n for n in zf.namelist() if n.startswith(f"copied-on/{bob_ref}/")]
    assert len(copied) == 1 and COPIED.encode() in zf.read(copied[0])
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert BOB_SENTENCE.encode() not in everything and BOB_NAME.encode() not in everything

    bob_own = [tuple(r) for r in desk.rows("SELECT m.id, m.subject, m.body, m.raw FROM messages m "
                                           "WHERE m.from_addr = ? ORDER BY m.id", BOB)]
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "erase", CUSTOMER, "--reason", "x", "--force", "--dry-run")
    assert code == 0 and "would erase: 2 complaint(s)" in text and "(1 on other complaints)" in text, text
    assert in_store(search(files_of(desk), sentence=COPIED), "sentence") > 0  # the dry run changed nothing
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "erase", CUSTOMER, "--reason", "x", "--force")
    assert code == 0, text
    after = search(files_of(desk), sentence=COPIED)
    assert all(n == 0 for where in after.values() for n in where.values()), after
    assert [tuple(r) for r in desk.rows("SELECT m.id, m.subject, m.body, m.raw FROM messages m "
                                        "WHERE m.from_addr = ? ORDER BY m.id", BOB)] == bob_own
    assert search(files_of(desk), BOB, BOB_NAME, BOB_SENTENCE)["db"]["sentence"] > 0  # VACUUM wrote it there
    assert desk.rows("SELECT cc_addrs FROM complaints WHERE customer_addr = ?", BOB)[0][0] == "[]"


def test_a_seller_record_exported(two_customers, tmp_path):
    desk, first, second = two_customers
    out = tmp_path / "seller.zip"
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "export", "--seller", "S-1042", "--out", str(out))
    assert code == 0 and "seller S-1042" in text, text
    record = json.loads(zipfile.ZipFile(out).read("seller.json"))
    assert record["seller"]["address"] == LUMIERE and len(record["outreach"]) == 1
    code, text = cli_at(desk, T0 + 5 * H, "privacy", "export", "--seller", "S-9999", "--out", str(out))
    assert code == 1
