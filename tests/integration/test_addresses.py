"""Issue 12, findings 10, 13, 15 on the real stack: an address mail cannot go to
is recorded where it enters and never queued; the customer's address reaches
no seller in any spelling; what we call sendable a real SMTP server takes."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiosmtplib

from maildesk.core.addresses import Spellings, split
from tests.integration.conftest import body
from tests.integration.test_clock import once_at
from tests.integration.test_intake import ref_of
from tests.integration.test_sellers import CS, LUMIERE, T0, H, registry, staff_says, to  # noqa: F401 (fixture)
from tests.support import mail
from tests.unit.address_shapes import SHAPES
from tests.unit.test_addresses import VARIANTS


def raw_from(from_value: bytes, message_id: str) -> bytes:
    return (b"From: " + from_value + b"\r\nTo: support@imolocale.test\r\nSubject: Colis jamais recu\r\n"
            b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <" + message_id.encode() + b">\r\n\r\n"
            b"Bonjour, ma commande 784512 n'est jamais arrivee.\r\n")


def test_what_we_call_sendable_a_real_smtp_server_takes_as_written(smtp_sink):
    """Every sendable ASCII shape of the table through aiosmtplib into aiosmtpd: RCPT TO as stored."""
    shapes = [a for a, why in SHAPES if not why and a.isascii()]

    async def send_all():
        async with aiosmtplib.SMTP(hostname=smtp_sink.host, port=smtp_sink.port, start_tls=False) as client:
            for address in shapes:
                await client.sendmail("support@imolocale.test", [address], b"Subject: x\r\n\r\nx\r\n")

    asyncio.run(send_all())
    got = [c.rcpt_tos for c in smtp_sink.wait_for(len(shapes))]
    assert [[split(a) for a in rcpt] for rcpt in got] == [[split(a)] for a in shapes]


def _outbox_to(desk, needle: str) -> list:
    return [r for r in desk.rows("SELECT rcpt, status FROM outbox") if needle in "".join(json.loads(r["rcpt"]))]


def test_a_customer_mail_cannot_reach_is_kept_told_to_staff_and_never_queued(desk):
    senders = {b'Bob <bob"smith"@x.test>': 'bob"smith"@x.test', b'"a"."b"@x.test': '"a"."b"@x.test',
               b"N <a@[127.0.0.1]>": "a@[127.0.0.1]", b"N <a@[ipv6:::1]>": "a@[ipv6:::1]",
               b"Bob <a\x00b@x.test>": "a\ufffdb@x.test"}  # Dovecot stores the NUL as 0x80
    for i, header in enumerate(senders):
        desk.deliver(raw_from(header, f"u{i}@x.test"), msg_time=T0)
    desk.deliver(mail(sender="camille@example.fr"), msg_time=T0)
    sent = once_at(desk, T0 + timedelta(minutes=1))

    rows = {r["customer_addr"]: r for r in desk.rows("SELECT * FROM complaints")}
    assert set(rows) == {*senders.values(), "camille@example.fr"}
    notes = to(sent, CS)
    assert len(notes) == 6 and [m for m in sent if "camille@example.fr" in str(m["To"])]  # she is answered
    for address in senders.values():
        complaint = rows[address]
        [event] = desk.rows("SELECT detail FROM events WHERE complaint_id = ? AND kind = 'unreachable_address'",
                            complaint["id"])
        assert json.loads(event["detail"])["reason"]
        [note] = [n for n in notes if ref_of(n) == complaint["ref"]]
        assert "Impossible de répondre à ce client par e-mail" in body(note)
        assert complaint["acked_at"] is None
    queued = desk.rows("SELECT rcpt, status FROM outbox")
    assert all(json.loads(r["rcpt"])[0] not in senders.values() for r in queued)
    assert {r["status"] for r in queued} == {"sent"}

    # staff answer one: the answer is recorded as not sent, nothing is queued to the address
    note = next(n for n in notes if ref_of(n) == rows['bob"smith"@x.test']["ref"])
    staff_says(desk, note, "Bonjour, nous regardons.", T0 + H)
    assert _outbox_to(desk, 'bob"smith"') == []
    kinds = [r["kind"] for r in desk.rows("SELECT kind FROM events WHERE complaint_id = ?",
                                         rows['bob"smith"@x.test']["id"])]
    assert "not_sent" in kinds


def test_assign_to_an_address_mail_cannot_go_to_is_refused(desk):
    desk.deliver(mail(sender="camille@example.fr"), msg_time=T0)
    [note] = to(once_at(desk, T0 + timedelta(minutes=1)), CS)
    sent = staff_says(desk, note, '#assign "jean"."dupont"@imolocale.test\nJe prends.', T0 + H)
    [error] = to(sent, CS)
    assert "#assign needs an e-mail address" in body(error) and "mixes quoted" in body(error)
    assert desk.rows("SELECT owner FROM complaints")[0]["owner"] is None
    assert _outbox_to(desk, "dupont") == []


def test_seller_import_rejects_an_address_mail_cannot_go_to(desk):
    path = desk.dir / "sellers.csv"
    path.write_text("id;shop_name;address\nS-1;Bon;ok@shop.example\nS-2;Points;a..b@shop.example\n"
                    "S-3;Chiffres;a@shop.123\n", encoding="utf-8")
    result = desk.cli("seller", "import", str(path))
    assert result.returncode == 1
    assert "1 added" in result.stdout and "2 rejected" in result.stdout
    assert "line 3: address 'a..b@shop.example' cannot be sent to: local part 'a..b' has an empty part" \
        in result.stdout
    assert "line 4: address 'a@shop.123' cannot be sent to: top-level domain '123' is a number" in result.stdout


def test_no_spelling_of_the_customer_address_reaches_the_seller(registry):
    desk = registry
    customer = "jean.dupont@example.fr"
    desk.deliver(mail(sender=customer, name="Jean Dupont"), msg_time=T0)
    [note] = to(once_at(desk, T0 + timedelta(minutes=1)), CS)
    facts = "Le client écrit depuis :\n" + "\n".join(f"- {v}" for v in VARIANTS) + "\nMerci de le rembourser."
    sent = staff_says(desk, note, f"#seller S-1042\n{facts}", T0 + H)
    [outreach] = to(sent, LUMIERE)
    text = body(outreach)
    assert "Merci de le rembourser." in text and text.count("[adresse du client masquée]") == len(VARIANTS)
    raw = b"".join(c.data for c in desk.sink.messages if LUMIERE in c.rcpt_tos)
    spellings = Spellings(customer)
    assert not spellings.found(text) and not spellings.found(raw.decode("utf-8", "replace"))
    assert "dupont" not in text.lower() and b"dupont" not in raw.lower()
