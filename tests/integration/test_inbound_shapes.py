"""Real-world inbound shapes through the daemon on the local stack (issue 12, findings 4, 5, 14):
feedback reports are recorded on the complaint and never answered; odd charsets and
encoded words are read best-effort and acknowledged, never quarantined."""
from __future__ import annotations

import json

from tests.support import mail

ARF = """From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.example>
To: {support}
Subject: FW: Votre réclamation
Message-ID: <arf-1@arf.mail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an email abuse report for an email message received from IP 203.0.113.7.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{support}>
Arrival-Date: Tue, 24 Nov 2026 08:12:03 +0000

--arf
Content-Type: text/rfc822-headers

{headers}
--arf--
"""

JMRP = """From: staff@hotmail.com
To: {support}
Subject: complaint about message from 203.0.113.7
Message-ID: <jmrp-1@hotmail.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="jmrp"

--jmrp
Content-Type: text/plain

This is an email abuse report for an email message received from IP 203.0.113.7.

--jmrp
Content-Type: message/rfc822
Content-Disposition: inline

X-HmXmrOriginalRecipient: <camille@hotmail.example>
{original}
--jmrp--
"""


def _ack(desk, to="camille@example.fr"):
    [raw] = [c.data for c in desk.sink.messages if to.encode() in c.data.split(b"\n\n", 1)[0]
             and b"auto-replied" in c.data]
    return raw


def test_feedback_reports_are_recorded_on_the_complaint_and_never_answered(desk, support):
    desk.deliver(mail(message_id="<c1@example.fr>"))
    desk.once()
    ack = _ack(desk).decode("ascii").replace("\r\n", "\n")
    headers = ack.split("\n\n", 1)[0]
    before = len(desk.sink.messages)

    desk.deliver(ARF.format(support=support, headers=headers).encode())
    desk.deliver(JMRP.format(support=support, original=ack).encode())
    # a report about mail that is not ours: kept on its own (on no complaint), answered never
    desk.deliver(JMRP.format(support=support, original="From: x@y.test\nMessage-ID: <other@y.test>\n\nhi\n")
                 .replace("jmrp-1", "jmrp-2").encode())
    desk.once()

    assert len(desk.sink.messages) == before  # no mail to the reporters, nor to staff
    [complaint] = desk.rows("SELECT * FROM complaints")
    reports = desk.rows("SELECT actor, detail FROM events WHERE kind = 'spam_report' AND complaint_id = ?",
                        complaint["id"])
    assert sorted(r["actor"] for r in reports) == ["feedback@arf.mail.example", "staff@hotmail.com"]
    assert all(json.loads(r["detail"])["feedback"] == "abuse" for r in reports)
    assert len(desk.rows("SELECT * FROM messages WHERE kind = 'spam_report' AND complaint_id = ?",
                         complaint["id"])) == 2
    assert len(desk.rows("SELECT * FROM messages WHERE kind = 'spam_report' AND complaint_id IS NULL")) == 1
    assert desk.folder("INBOX") == 0


def _raw(subject: bytes, charset: bytes | None, body: bytes, sender: bytes) -> bytes:
    ctype = b"Content-Type: text/plain; charset=" + charset + b"\n" if charset is not None else b""
    return (b"From: Client <" + sender + b">\nTo: support@imolocale.test\nSubject: " + subject +
            b"\nMessage-ID: <" + sender + b".1@example.fr>\nMIME-Version: 1.0\n" + ctype +
            b"Content-Transfer-Encoding: 8bit\n\n" + body + b"\n")


SHAPES = {  # sender local part -> (subject bytes, declared charset, body bytes)
    "ew": (b"Colis =??b?qQ?=", b"utf-8", "Bonjour, mon colis n'est pas arrivé.".encode()),
    "undefined": (b"Colis", b"undefined", "Bonjour, colis abîmé.".encode("latin-1")),
    "idna": (b"Colis", b"idna", "Bonjour, colis abîmé.".encode()),
    "punycode": (b"Colis", b"punycode", "Bonjour, colis abîmé.".encode()),
    "xunknown": (b"Colis", b"x-unknown", "Bonjour, colis abîmé.".encode("latin-1")),
    "utf7": (b"Colis +2AA-", b"utf-7", b"Bonjour +2AA- +ADw-script+AD4- colis"),
    "escape": (b"Colis", b"unicode_escape", b"Bonjour \\ud800 \\x00 colis \xe9"),
    "unknownew": (b"=?x-unknown?q?Colis_ab=EEm=E9?=", None, b"Bonjour"),
    "gb": ("转发：整体提升企业服务水平".encode("gb2312"), b"gb2312", "你好，我的包裹没有到。".encode("gb2312")),
}


def test_odd_charsets_and_encoded_words_are_acknowledged_not_quarantined(desk):
    for local, (subject, charset, text) in SHAPES.items():
        desk.deliver(_raw(subject, charset, text, f"shape-{local}@example.fr".encode()))
    desk.once()

    assert desk.rows("SELECT sender, reason FROM quarantine") == []
    assert desk.folder("maildesk/quarantine") == 0 and desk.folder("INBOX") == 0
    for local in SHAPES:
        assert len(desk.sent(to=f"shape-{local}@example.fr")) == 1, local
    [gb] = desk.sent(to="shape-gb@example.fr")
    assert gb["Subject"].endswith("] 转发：整体提升企业服务水平")
    [ew] = desk.sent(to="shape-ew@example.fr")
    assert ew["Subject"].endswith("] Colis =??b?qQ?=")
    notes = {r["customer_addr"]: json.loads(r["detail"])["notes"] for r in desk.rows(
        "SELECT c.customer_addr, e.detail FROM events e JOIN complaints c ON c.id = e.complaint_id "
        "WHERE e.kind = 'decoded_best_effort'")}
    for local in ("undefined", "idna", "punycode", "xunknown", "escape", "unknownew"):
        assert any("unknown charset" in n for n in notes[f"shape-{local}@example.fr"]), local
    assert "shape-gb@example.fr" not in notes
