"""Unit tests for maildesk.inbound (parse): raw bytes -> InboundMail."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import datetime, timedelta

import pytest

from maildesk.inbound.extract import detect_language, find_order_number
from maildesk.inbound.attachments import Attachment
from maildesk.inbound.parse import InboundMail, ParseError, parse
from maildesk.inbound.reply import strip_quoted


def make(body: str | bytes = "Bonjour,\nma commande n'est pas arrivée.\n", *, headers: dict | list | None = None,
         content_type: str | None = "text/plain; charset=utf-8", newline: bytes = b"\n") -> bytes:
    """A small message; headers given as dict/list override the defaults."""
    base = {
        "From": "Marie Dupont <Marie.Dupont@Example.FR>",
        "To": "Support <support@imolocale.fr>",
        "Subject": "Problème de livraison",
        "Date": "Mon, 23 Nov 2026 10:00:00 +0100",
        "Message-ID": "<abc123@mail.example.fr>",
        "MIME-Version": "1.0",
    }
    if content_type:
        base["Content-Type"] = content_type
    items: list[tuple[str, str | None]]
    if isinstance(headers, list):
        items = list(base.items()) + headers
    else:
        base.update(headers or {})
        items = list(base.items())
    lines = [f"{k}: {v}".encode("utf-8") for k, v in items if v is not None]
    if isinstance(body, str):
        body = body.encode("utf-8")
    raw = b"\n".join(lines) + b"\n\n" + body
    if newline != b"\n":
        raw = raw.replace(b"\n", newline)
    return raw


# ------------------------------------------------------------------ basics


def test_basic_fields():
    m = parse(make())
    assert isinstance(m, InboundMail)
    assert m.from_addr == "marie.dupont@example.fr"
    assert m.from_name == "Marie Dupont"
    assert m.to == ("support@imolocale.fr",)
    assert m.cc == ()
    assert m.reply_to is None
    assert m.subject == "Problème de livraison"
    assert m.message_id == "<abc123@mail.example.fr>"
    assert m.date == datetime.fromisoformat("2026-11-23T10:00:00+01:00")
    assert m.date.utcoffset() == timedelta(hours=1)
    assert m.text == "Bonjour,\nma commande n'est pas arrivée."
    assert m.reply_text == m.text
    assert m.html is None
    assert m.attachments == ()
    assert m.language == "fr"
    assert m.auto_reason is None
    assert m.bounce_of == ()
    assert m.size == len(make())
    assert ("Subject", "Problème de livraison") in m.headers


def test_immutable():
    m = parse(make())
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.subject = "x"  # type: ignore[misc]
    assert isinstance(m.to, tuple) and isinstance(m.headers, tuple)


def test_repr_does_not_leak_bodies():
    m = parse(make(body="secret body text 42"))
    assert "secret body text" not in repr(m)


def test_addresses_lowercased_and_bare():
    m = parse(make(headers={
        "To": '"Support, Imo" <Support@Imolocale.FR>, other@EXAMPLE.com',
        "Cc": "=?utf-8?q?Jos=C3=A9?= <JOSE@x.fr>, undisclosed-recipients:;",
        "Reply-To": "Marie <reply@Example.fr>",
    }))
    assert m.to == ("support@imolocale.fr", "other@example.com")
    assert m.cc == ("jose@x.fr",)
    assert m.reply_to == "reply@example.fr"


def test_threading_headers():
    m = parse(make(headers={
        "In-Reply-To": "<a1@x.fr>",
        "References": "<root@x.fr>\n <a0@x.fr> <a1@x.fr>",
    }))
    assert m.in_reply_to == ("<a1@x.fr>",)
    assert m.references == ("<root@x.fr>", "<a0@x.fr>", "<a1@x.fr>")


def test_message_id_normalized():
    assert parse(make(headers={"Message-ID": "  < abc @ def.fr >  "})).message_id == "<abc@def.fr>"
    assert parse(make(headers={"Message-ID": "abc@def.fr"})).message_id == "<abc@def.fr>"


def test_synthetic_message_id_is_stable():
    raw = make(headers={"Message-ID": None})
    first, second = parse(raw), parse(raw)
    assert re.fullmatch(r"<[0-9a-f]{32}@maildesk\.invalid>", first.message_id)
    assert first.message_id == second.message_id
    # Same message over IMAP (CRLF) and from a file (LF): same id.
    assert parse(raw.replace(b"\n", b"\r\n")).message_id == first.message_id
    assert parse(make(body="autre", headers={"Message-ID": None})).message_id != first.message_id
    assert parse(make(headers={"Message-ID": ""})).message_id.endswith("@maildesk.invalid>")
    assert "MissingMessageId" in first.defects


def test_date_bad_is_none():
    assert parse(make(headers={"Date": "not a date at all"})).date is None
    assert parse(make(headers={"Date": None})).date is None
    d = parse(make(headers={"Date": "Mon, 23 Nov 2026 10:00:00 -0000"})).date
    assert d is not None and d.tzinfo is not None


def test_auth_results_in_order():
    m = parse(make(headers=[
        ("Authentication-Results", "mx.imolocale.fr; spf=pass smtp.mailfrom=example.fr"),
        ("Authentication-Results", "relay.example; dkim=fail"),
    ]))
    assert m.auth_results == (
        "mx.imolocale.fr; spf=pass smtp.mailfrom=example.fr",
        "relay.example; dkim=fail",
    )


# ------------------------------------------------------------------ line endings & hostile shapes


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline):
    m = parse(make(body="ligne 1\nligne 2\n", newline=newline))
    assert m.subject == "Problème de livraison"
    assert m.text == "ligne 1\nligne 2"
    assert m.from_addr == "marie.dupont@example.fr"


def nested(depth: int, leaf: str = "Content-Type: text/plain; charset=utf-8\n\nau fond du colis\n") -> bytes:
    """A message whose text part sits `depth` multiparts deep."""
    part = leaf
    for i in range(depth - 1):
        part = f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n{part}\n--b{i}--\n'
    top = f"b{depth - 1}"
    return make(content_type=f'multipart/mixed; boundary="{top}"', body=f"--{top}\n{part}\n--{top}--\n")


def test_deep_nesting_200():
    m = parse(nested(200))
    assert m.text == "au fond du colis"
    assert "NestingTooDeep" not in m.defects


def test_absurd_nesting_never_crashes():
    try:
        m = parse(nested(3000))
    except ParseError as exc:
        assert exc.reason
    else:
        assert m.from_addr == "marie.dupont@example.fr"
        assert "NestingTooDeep" in m.defects


def test_huge_subject_truncated():
    m = parse(make(headers={"Subject": "é" * 20000}))
    assert m.subject == "é" * 500


def test_missing_boundary_recovered():
    body = "--XyZ\nContent-Type: text/plain\n\nle texte\n--XyZ\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--XyZ--\n"
    m = parse(make(content_type="multipart/mixed", body=body))
    assert m.text == "le texte"
    assert [a.content_type for a in m.attachments] == ["image/png"]
    assert m.attachments[0].payload == b"\x89PNG\r\n\x1a\n"


def test_broken_base64_keeps_what_decodes():
    good = base64.b64encode("Bonjour, mon colis est abîmé.".encode()).decode()
    m = parse(make(body=good[:-3] + "!!*", headers={"Content-Transfer-Encoding": "base64"}))
    assert m.text.startswith("Bonjour, mon colis est ab")


# ------------------------------------------------------------------ header decoding


def test_rfc2047_subject_and_name():
    m = parse(make(headers={
        "From": "=?UTF-8?B?w4lsb2TDqWUgTMOpdnk=?= <elodee@example.fr>",
        "Subject": "=?utf-8?q?Commande_ab=C3=AEm=C3=A9e?= =?utf-8?q?_et_rembours=C3=A9e?=",
    }))
    assert m.from_name == "Élodée Lévy"
    assert m.subject == "Commande abîmée et remboursée"


def test_rfc2047_split_multibyte_and_unknown_charset():
    # "é" (c3 a9) split across two encoded words must be joined before decoding.
    m = parse(make(headers={"Subject": "=?utf-8?q?caf=C3?= =?utf-8?q?=A9?="}))
    assert m.subject == "café"
    m = parse(make(headers={"Subject": "=?x-unknown-charset?q?r=E9sum=E9?="}))
    assert m.subject == "résumé"
    m = parse(make(headers={"Subject": "=?utf-8?B?w6l0w6k?="}))  # missing padding
    assert m.subject == "été"


def test_quoted_encoded_word_in_display_name():
    m = parse(make(headers={"From": '"=?iso-8859-1?q?Fran=E7ois?=" <f@example.fr>'}))
    assert m.from_name == "François"


def test_raw_8bit_headers():
    raw = make(headers={"Subject": "x"}).replace(b"Subject: x", "Subject: Réclamation reçue".encode("latin-1"))
    assert parse(raw).subject == "Réclamation reçue"
    raw = make(headers={"Subject": "x"}).replace(b"Subject: x", "Subject: Réclamation reçue".encode("utf-8"))
    assert parse(raw).subject == "Réclamation reçue"


@pytest.mark.parametrize("header", ["Subject", "From"])
def test_crlf_in_encoded_header_never_leaks(header):
    evil = "=?utf-8?q?Hello=0D=0ABcc:_victim@x.fr=0A=09tab?="
    value = evil if header == "Subject" else f"{evil} <a@b.fr>"
    m = parse(make(headers={header: value}))
    for text in (m.subject, m.from_name):
        assert "\n" not in text and "\r" not in text and "\t" not in text
    if header == "Subject":
        assert m.subject == "Hello Bcc: victim@x.fr tab"
    else:
        assert m.from_name == "Hello Bcc: victim@x.fr tab"
    for name, value in m.headers:
        assert "\n" not in value and "\r" not in value


def test_folded_subject_becomes_one_line():
    m = parse(make(headers={"Subject": "Ma commande\n\test   toujours\n  absente\x07"}))
    assert m.subject == "Ma commande est toujours absente"


def test_from_name_limited_and_single_line():
    m = parse(make(headers={"From": '"' + "Nom " * 100 + '" <n@x.fr>'}))
    assert len(m.from_name) <= 200 and "\n" not in m.from_name


# ------------------------------------------------------------------ bodies & charsets


def test_latin1_undeclared_body():
    raw = make(content_type="text/plain", body="J'ai reçu un colis abîmé, où est mon remboursement ?".encode("cp1252"))
    m = parse(raw)
    assert m.text == "J'ai reçu un colis abîmé, où est mon remboursement ?"
    raw = make(content_type=None, body="Voilà 20 € pour le transport".encode("cp1252"))
    assert parse(raw).text == "Voilà 20 € pour le transport"


def test_mislabelled_charsets():
    # Declared UTF-8, actually Latin-1.
    m = parse(make(content_type="text/plain; charset=utf-8", body="déçu".encode("latin-1")))
    assert m.text == "déçu"
    # Declared ISO-8859-1, actually UTF-8.
    m = parse(make(content_type="text/plain; charset=iso-8859-1", body="déçu".encode("utf-8")))
    assert m.text == "déçu"
    # Unknown charset: never fails.
    m = parse(make(content_type="text/plain; charset=x-nonsense", body="déçu".encode("utf-8")))
    assert m.text == "déçu"


def test_quoted_printable_and_flowed():
    body = "Bonjour, ma commande n=C2=B0 4242 n'est =\npas arriv=C3=A9e.\n"
    m = parse(make(body=body, headers={"Content-Transfer-Encoding": "quoted-printable"}))
    assert m.text == "Bonjour, ma commande n° 4242 n'est pas arrivée."
    flowed = "Une phrase coupée \npar le client mail.\n-- \nMarie\n"
    m = parse(make(body=flowed, content_type="text/plain; charset=utf-8; format=flowed"))
    assert m.text == "Une phrase coupée par le client mail.\n-- \nMarie"


def test_control_chars_removed_from_text():
    m = parse(make(body="a\x00b\x1bc\r\nd"))
    assert m.text == "abc\nd"


HTML_BODY = """<html><head><style>p {color: red}</style></head><body>
<div dir="ltr"><div>Bonjour,</div><div><br></div>
<div>Ma <b>commande</b> n° 12345 n'est pas arrivée. Prix : 12.50€ - 1. test *étoile* _souligné_</div>
<div>Voir <a href="https://imolocale.fr/suivi?id=1&amp;x=(2)">le suivi</a> et https://x.fr</div>
<table><tr><td>Lampe</td><td>20 €</td></tr></table>
<h1>Titre</h1>
</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">Le lun. 23 nov. 2026 à 10:00, Vendeur &lt;<a href="mailto:v@shop.fr">v@shop.fr</a>&gt; a écrit :<br></div>
<blockquote class="gmail_quote"><div>Bonjour Marie,<br>votre colis est parti.</div></blockquote></div>
</body></html>"""


def test_html_only_mail_to_text():
    m = parse(make(content_type="text/html; charset=utf-8", body=HTML_BODY))
    assert m.html is not None and "<blockquote" in m.html
    t = m.text
    assert "Ma commande n° 12345 n'est pas arrivée." in t
    assert "le suivi (https://imolocale.fr/suivi?id=1&x=(2))" in t
    assert "*étoile* _souligné_" in t  # literal, not escaped
    assert "\\" not in t and "**" not in t and "color: red" not in t
    assert "Lampe 20 €" in t
    assert "Titre" in t and "# Titre" not in t
    assert "votre colis est parti" in t
    assert "votre colis est parti" not in m.reply_text
    assert "a écrit" not in m.reply_text
    assert m.reply_text.startswith("Bonjour,")
    assert m.order_number == "12345"


def test_alternative_prefers_plain_and_keeps_html():
    body = (
        "--b1\nContent-Type: text/plain; charset=utf-8\n\ntexte brut\n"
        "--b1\nContent-Type: text/html; charset=utf-8\n\n<p>texte <b>html</b></p>\n--b1--\n"
    )
    m = parse(make(content_type='multipart/alternative; boundary="b1"', body=body))
    assert m.text == "texte brut"
    assert m.html and "<b>html</b>" in m.html


def test_html_charset_from_meta():
    html = '<html><head><meta charset="windows-1252"></head><body>Reçu</body></html>'.encode("cp1252")
    m = parse(make(content_type="text/html", body=html))
    assert m.text == "Reçu"


# ------------------------------------------------------------------ attachments


def _attachment(headers: str, data: bytes = b"%PDF-1.4 test") -> str:
    return f"--b1\n{headers}\nContent-Transfer-Encoding: base64\n\n{base64.b64encode(data).decode()}\n"


def test_attachments_with_odd_filenames():
    parts = [
        "--b1\nContent-Type: text/plain; charset=utf-8\n\nVoici les photos.\n",
        _attachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="../../etc/passwd"'),
        _attachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="C:\\\\Users\\\\me\\\\facture.pdf"'),
        _attachment("Content-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''facture%20n%C2%B01.pdf"),
        _attachment('Content-Type: application/pdf; name="=?utf-8?q?re=C3=A7u.pdf?="\nContent-Disposition: attachment'),
        _attachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="\u202egpj.exe"'),
        _attachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=""'),
        _attachment('Content-Type: image/png\nContent-ID: <img1@x>\nContent-Disposition: inline', b"\x89PNG"),
        _attachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="...."'),
        _attachment('Content-Type: text/plain\nContent-Disposition: attachment; filename="notes.txt"', "note é".encode()),
        "--b1--\n",
    ]
    m = parse(make(content_type='multipart/mixed; boundary="b1"', body="".join(parts)))
    names = [a.filename for a in m.attachments]
    assert names == [
        "passwd",
        "facture.pdf",
        "facture n°1.pdf",
        "reçu.pdf",
        "gpj.exe",
        "attachment-6.bin",
        "attachment-7.png",
        "attachment-8.pdf",
        "notes.txt",
    ]
    for a in m.attachments:
        assert isinstance(a, Attachment)
        assert "/" not in a.filename and "\\" not in a.filename and a.filename
        assert not any(ord(c) < 32 or 0x202A <= ord(c) <= 0x202E for c in a.filename)
        assert a.size == len(a.payload)
    assert m.attachments[0].payload == b"%PDF-1.4 test"
    assert m.attachments[0].content_type == "application/pdf"
    assert m.attachments[6].payload == b"\x89PNG"
    assert m.attachments[8].payload == "note é".encode()
    assert m.text == "Voici les photos."


def test_raw_utf8_filename():
    part = _attachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="reçu été.pdf"')
    raw = make(content_type='multipart/mixed; boundary="b1"', body=(part + "--b1--\n").encode("utf-8"))
    assert parse(raw).attachments[0].filename == "reçu été.pdf"


def test_attached_message_is_attachment_not_body():
    inner = "From: vendeur@shop.fr\nSubject: Facture\nMessage-ID: <inner@shop.fr>\n\nTexte du vendeur\n"
    body = (
        "--b1\nContent-Type: text/plain\n\nJe transfère le mail du vendeur.\n"
        f"--b1\nContent-Type: message/rfc822\n\n{inner}\n--b1--\n"
    )
    m = parse(make(content_type='multipart/mixed; boundary="b1"', body=body))
    assert m.text == "Je transfère le mail du vendeur."
    assert [a.content_type for a in m.attachments] == ["message/rfc822"]
    assert m.attachments[0].filename == "attachment-1.eml"
    assert b"Texte du vendeur" in m.attachments[0].payload
    assert m.auto_reason is None and m.bounce_of == ()


# ------------------------------------------------------------------ quoted history


FR_GMAIL = """Bonjour,

Je n'ai toujours pas reçu ma commande.

Cordialement,
--
Marie Dupont
06 12 34 56 78

Le lun. 23 nov. 2026 à 10:00, Vendeur Pro <vendeur@shop.fr> a
écrit :

> Bonjour Marie,
> votre colis est parti.
>
> > Le 20 nov. 2026, Marie a écrit :
> > Où est mon colis ?
"""

EN_GMAIL = """Hello,

I still have not received my order.

Best regards,
John Smith
Sent from my iPhone

On Mon, Nov 23, 2026 at 10:00 AM Seller Shop <seller@shop.com>
wrote:

> Hi John,
> your parcel has shipped.
"""

OUTLOOK_FR = """Merci pour votre retour, je reste disponible.

Jean Martin
Boutique du Coin

________________________________
De : Support Imolocale <support@imolocale.fr>
Envoyé : lundi 23 novembre 2026 10:00
À : Jean Martin <jean@x.fr>
Objet : RE: commande 12345

Bonjour,
nous avons bien reçu votre demande.
"""

OUTLOOK_EN = """Thanks, I will wait.

Kind regards,
Jane

-----Original Message-----
From: Support <support@imolocale.fr>
Sent: Monday, November 23, 2026 10:00 AM
To: Jane <jane@x.com>
Subject: RE: order 12345

Hello Jane,
we received your request.
"""

OUTLOOK_EN_BLOCK = """Please see below.

Jane Doe | Acme Ltd

From: Support <support@imolocale.fr>
Sent: Monday, November 23, 2026 10:00 AM
To: Jane <jane@x.com>
Subject: RE: order 12345

Hello Jane,
"""


@pytest.mark.parametrize(
    "text, kept, gone",
    [
        (FR_GMAIL, ["Je n'ai toujours pas reçu ma commande.", "Cordialement,", "--\nMarie Dupont\n06 12 34 56 78"],
         ["a écrit", "votre colis est parti", "Où est mon colis"]),
        (EN_GMAIL, ["I still have not received my order.", "Best regards,\nJohn Smith\nSent from my iPhone"],
         ["wrote:", "your parcel has shipped"]),
        (OUTLOOK_FR, ["Merci pour votre retour", "Jean Martin\nBoutique du Coin"],
         ["De :", "Envoyé", "nous avons bien reçu", "_____"]),
        (OUTLOOK_EN, ["Thanks, I will wait.", "Kind regards,\nJane"],
         ["Original Message", "we received your request"]),
        (OUTLOOK_EN_BLOCK, ["Please see below.", "Jane Doe | Acme Ltd"], ["From:", "Hello Jane"]),
    ],
    ids=["fr-gmail", "en-gmail", "outlook-fr", "outlook-en-original-message", "outlook-en-header-block"],
)
def test_strip_quoted_styles(text, kept, gone):
    reply = strip_quoted(text)
    for piece in kept:
        assert piece in reply
    for piece in gone:
        assert piece not in reply
    m = parse(make(body=text))
    assert m.reply_text == reply and m.text.startswith(reply.split("\n")[0])


def test_strip_quoted_inline_reply_survives():
    text = "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek wrote:\n> question?\n\nMy inline answer.\n\n> more\nThanks"
    assert strip_quoted(text) == "Hi,\n\nMy inline answer.\n\nThanks"


def test_strip_quoted_fallback_when_everything_is_quoted():
    text = "> only a quote\n> nothing else"
    assert strip_quoted(text) == text
    assert strip_quoted("") == ""


def test_strip_quoted_keeps_lines_that_only_look_like_headers():
    text = "On your remote host you can run:\n\n  telnet 127.0.0.1\n\nDe: 10h à 12h je suis là."
    assert strip_quoted(text) == text


# ------------------------------------------------------------------ automatic mail


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Auto-Submitted": "auto-replied"}, "auto-submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, "auto-submitted: auto-generated"),
        ({"Precedence": "bulk"}, "precedence: bulk"),
        ({"Precedence": "junk"}, "precedence: junk"),
        ({"Precedence": "list"}, "precedence: list"),
        ({"Precedence": "auto_reply"}, "precedence: auto_reply"),
        ({"List-Id": "Annonces <annonces.example.fr>"}, "list-id"),
        ({"List-Unsubscribe": "<mailto:unsub@example.fr>"}, "list-unsubscribe"),
        ({"X-Mailman-Version": "2.1"}, "mailing-list: x-mailman-version"),
        ({"X-Autoreply": "yes"}, "x-autoreply"),
        ({"X-Autorespond": "Vacation"}, "x-autorespond"),
        ({"X-Failed-Recipients": "a@b.fr"}, "delivery-report"),
        ({"Return-Path": "<>"}, "return-path: <>"),
        ({"From": "MAILER-DAEMON@mx.example.fr"}, "sender: mailer-daemon"),
        ({"From": "Mail Delivery System <Mailer-Daemon@mx.example.fr>"}, "sender: mailer-daemon"),
        ({"From": "postmaster@example.fr"}, "sender: postmaster"),
        ({"From": "noreply@shop.fr"}, "sender: no-reply"),
        ({"From": "No-Reply <no-reply@shop.fr>"}, "sender: no-reply"),
        ({"From": "donotreply@shop.fr"}, "sender: no-reply"),
        ({"From": "do-not-reply@shop.fr"}, "sender: no-reply"),
        ({"From": "ne-pas-repondre@shop.fr"}, "sender: no-reply"),
        ({"From": "orders-noreply@shop.fr"}, "sender: no-reply"),
        ({"Subject": "Automatic reply: order 12345"}, "subject: automatic reply"),
        ({"Subject": "Réponse automatique : commande 12345"}, "subject: automatic reply"),
        ({"Subject": "Out of Office: commande", "X-Auto-Response-Suppress": "All"}, "subject: out of office"),
        ({"Subject": "Absence du 1er au 15", "X-Auto-Response-Suppress": "OOF"}, "subject: out of office"),
    ],
)
def test_auto_reason_signals(headers, reason):
    assert parse(make(headers=headers)).auto_reason == reason


@pytest.mark.parametrize(
    "headers",
    [
        # Outlook puts this on ordinary mail: never a signal on its own.
        {"X-Auto-Response-Suppress": "All", "X-MS-Has-Attach": "", "Thread-Topic": "commande"},
        {"Auto-Submitted": "no"},
        {"Precedence": "first-class"},
        {"Subject": "Absence de remboursement depuis 3 semaines"},
        {"Subject": "Out of office but still waiting"},
        {"Subject": "Auto: pièce défectueuse"},
        {"Subject": "RE: Réponse automatique : commande 12345"},
        {"From": "nora@example.fr"},
        {"From": "donovan@example.fr"},
        {"X-Autoreply": "no"},
    ],
)
def test_auto_reason_not_for_people(headers):
    assert parse(make(headers=headers)).auto_reason is None


def _dsn(report_type: str, status_part: str, original: str) -> bytes:
    body = (
        "--b1\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        f"--b1\n{status_part}\n"
        f"--b1\n{original}\n--b1--\n"
    )
    return make(
        content_type=f'multipart/report; report-type={report_type}; boundary="b1"',
        body=body,
        headers={"From": "Mail Delivery System <MAILER-DAEMON@mx.example.fr>", "Message-ID": "<dsn1@mx.example.fr>"},
    )


ORIGINAL = "From: support@imolocale.fr\nTo: client@x.fr\nSubject: Votre réclamation\nMessage-ID: <reply-42@imolocale.fr>\n\nBonjour\n"


def test_bounce_of_from_message_rfc822():
    raw = _dsn(
        "delivery-status",
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.fr\n\nFinal-Recipient: rfc822; client@x.fr\nAction: failed\nStatus: 5.1.1\n",
        "Content-Type: message/rfc822\n\n" + ORIGINAL,
    )
    m = parse(raw)
    assert m.auto_reason == "delivery-report"
    assert m.bounce_of == ("<reply-42@imolocale.fr>",)
    assert m.text == "Your message could not be delivered."
    assert {a.content_type for a in m.attachments} == {"message/delivery-status", "message/rfc822"}


def test_bounce_of_from_rfc822_headers():
    raw = _dsn(
        "delivery-status",
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\nAction: failed\n",
        "Content-Type: text/rfc822-headers\n\nFrom: support@imolocale.fr\nMessage-Id:\n <reply-43@imolocale.fr>\nSubject: x\n",
    )
    assert parse(raw).bounce_of == ("<reply-43@imolocale.fr>",)


def test_feedback_and_disposition_reports():
    arf = _dsn("feedback-report", "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n",
               "Content-Type: message/rfc822\n\n" + ORIGINAL)
    m = parse(arf)
    assert m.auto_reason == "delivery-report" or m.auto_reason == "feedback-report"
    assert m.auto_reason == "feedback-report"
    assert m.bounce_of == ("<reply-42@imolocale.fr>",)
    mdn = _dsn("disposition-notification",
               "Content-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n",
               "Content-Type: text/rfc822-headers\n\nMessage-ID: <reply-44@imolocale.fr>\n")
    assert parse(mdn).auto_reason == "disposition-notification"


def test_bounce_of_from_plain_text_body():
    body = (
        "Hi. This is the qmail-send program at mx.example.fr.\n"
        "I'm afraid I wasn't able to deliver your message.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Return-Path: <support@imolocale.fr>\n"
        "Message-ID: <reply-45@imolocale.fr>\n"
        "Subject: Votre réclamation\n"
    )
    m = parse(make(body=body, headers={"From": "MAILER-DAEMON@mx.example.fr", "Message-ID": None}))
    assert m.auto_reason == "sender: mailer-daemon"
    assert m.bounce_of == ("<reply-45@imolocale.fr>",)


def test_null_sender_bounce_parses():
    raw = make(body="Delivery failed.\n", headers={"From": "MAILER-DAEMON <>", "Return-Path": "<>"})
    m = parse(raw)
    assert m.from_addr == "mailer-daemon"
    assert m.from_name == "MAILER-DAEMON"
    assert m.auto_reason == "return-path: <>"
    assert "NullFromAddress" in m.defects
    assert parse(make(headers={"From": "Mail Delivery Subsystem <MAILER-DAEMON>"})).auto_reason == "sender: mailer-daemon"


def test_no_bounce_of_for_people():
    body = "Voici l'en-tête du mail reçu :\nMessage-ID: <reply-46@imolocale.fr>\n"
    assert parse(make(body=body)).bounce_of == ()


# ------------------------------------------------------------------ order numbers & language


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Bonjour, ma commande n° 123456 n'est pas arrivée", "123456"),
        ("commande #A1B2C3 reçue cassée", "A1B2C3"),
        ("N° de commande : 98765", "98765"),
        ("Numéro de commande: IMO-2026-1234.", "IMO-2026-1234"),
        ("Référence commande CMD-77-12", "CMD-77-12"),
        ("Commande N°4567", "4567"),
        ("mes commandes 4444 et 5555", "4444"),
        ("My order 1234567 never arrived", "1234567"),
        ("order number: IMO-2026-1234", "IMO-2026-1234"),
        ("Order #: 55512", "55512"),
        ("Order ID A77X91 is wrong", "A77X91"),
        ("commande du 12 mars, passée le 12/03/2026", None),
        ("j'ai commandé 3 articles", None),
        ("commande annulée", None),
        ("in order to get 10000 points", None),
        ("my border 12345", None),
        ("commande ABCDEF", None),
        ("commande 123", None),
        ("", None),
    ],
)
def test_find_order_number(text, expected):
    assert find_order_number(text) == expected


def test_order_number_subject_first():
    m = parse(make(headers={"Subject": "Re: commande 11111"}, body="ma commande 22222"))
    assert m.order_number == "11111"
    m = parse(make(headers={"Subject": "Réclamation"}, body="ma commande 22222"))
    assert m.order_number == "22222"


@pytest.mark.parametrize(
    "text, lang",
    [
        ("Bonjour, je n'ai toujours pas reçu ma commande. Merci de me répondre.", "fr"),
        ("Hello, I have not received my order yet. Please help, thanks.", "en"),
        ("Merci", "fr"),
        ("Thanks", "fr"),  # unclear: default French
        ("", "fr"),
        ("12345 !!!", "fr"),
        ("Hi, where is my package? It was shipped two weeks ago and it is still not here.", "en"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_language_from_reply_not_quote():
    body = "Hello, my order has still not arrived, can you check?\n\nLe lun. 23 nov. 2026 à 10:00, X <x@y.fr> a écrit :\n> Bonjour, votre commande est partie et nous sommes désolés du retard de la livraison.\n"
    assert parse(make(body=body)).language == "en"


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty message"),
        (b"  \r\n\t\n", "empty message"),
        (b"just some text without headers\n", "not an e-mail"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not an e-mail"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Outlook"),
        (b"To: a@b.fr\nSubject: hi\n\nbody\n", "no From"),
        (b"From: \nTo: a@b.fr\n\nbody\n", "From"),
        (b"From: Jean Dupont\nTo: a@b.fr\n\nbody\n", "From"),
    ],
)
def test_parse_errors(raw, reason):
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert reason in info.value.reason
    assert "\n" not in info.value.reason


def test_parse_rejects_non_bytes():
    with pytest.raises(ParseError):
        parse("From: a@b.fr\n\nx")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_accepted():
    raw = make()
    assert parse(bytearray(raw)).from_addr == parse(memoryview(raw)).from_addr == "marie.dupont@example.fr"


def test_leading_blank_lines_and_mbox_line_tolerated():
    assert parse(b"\r\n\r\n" + make()).from_addr == "marie.dupont@example.fr"
    assert parse(b"From MAILER-DAEMON Sat Oct  4 08:00:09 2025\n" + make()).from_addr == "marie.dupont@example.fr"


def test_an_address_whose_bytes_are_not_utf8_is_not_made_up():
    """Dovecot stores a NUL byte as 0x80, which windows-1252 reads as '€'."""
    from maildesk.core.addresses import sendable
    m = parse(b"From: Bob <a\x80b@x.test>\r\nSubject: s\r\nMessage-ID: <n@x.test>\r\n\r\nx\r\n")
    assert m.from_addr == "a\ufffdb@x.test" and not sendable(m.from_addr)[0]
    m = parse(b"From: J\xf6rg <j\xf6rg@x.test>\r\nSubject: s\r\nMessage-ID: <n@x.test>\r\n\r\nx\r\n")
    assert m.from_addr == "j\ufffdrg@x.test" and m.from_name == "Jörg"  # the name may be guessed
    m = parse("From: Jörg <jörg@x.test>\r\nSubject: s\r\nMessage-ID: <n@x.test>\r\n\r\nx\r\n".encode())
    assert m.from_addr == "jörg@x.test" and sendable(m.from_addr) == (True, "")


# --- issue 12: undeclared 8-bit headers, unusable charsets, feedback reports -----------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


def _raw8(subject: bytes, charset: bytes | None = None, body: bytes = b"Bonjour") -> bytes:
    ctype = b"Content-Type: text/plain; charset=" + charset + b"\n" if charset else b""
    return b"From: a@x.test\nSubject: " + subject + b"\nMIME-Version: 1.0\n" + ctype + b"\n" + body


def test_raw_8bit_subjects_read_by_the_charsets_the_message_declares():
    gb = "转发：整体提升企业服务水平"
    assert parse(_raw8(gb.encode("gb2312"), b"gb2312", "你好".encode("gb2312"))).subject == gb
    sj = "ご注文の商品が届きません"
    assert parse(_raw8(sj.encode("shift_jis"), b"shift_jis", "こんにちは".encode("shift_jis"))).subject == sj
    assert parse(_raw8("Réclamation colis abîmé".encode("utf-8"), b"iso-8859-1")).subject == "Réclamation colis abîmé"
    m = parse(_raw8("Réclamation colis abîmé".encode("latin-1")))
    assert m.subject == "Réclamation colis abîmé" and m.notes  # guessed, and said so
    assert parse(_raw8(gb.encode("utf-8"))).notes == ()


def test_unusable_charsets_are_read_best_effort_with_a_note():
    for charset in (b"undefined", b"idna", b"punycode", b"x-unknown", b"unicode_escape"):
        m = parse(_raw8(b"Colis", charset, "Colis abîmé \\u0041".encode()))
        assert m.text == "Colis abîmé \\u0041", charset
        assert any("unknown charset" in n for n in m.notes), charset
    m = parse(_raw8(b"Colis +2AA-", b"utf-7", b"Bonjour +2AA- +AOk-"))
    assert m.text == "Bonjour \ufffd é"


def test_hotmail_jmrp_is_a_feedback_report_naming_our_mail():
    raw = (b"From: staff@hotmail.com\nSubject: complaint about message from 203.0.113.7\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nabuse report\n"
           b"--b\nContent-Type: message/rfc822\n\nX-HmXmrOriginalRecipient: <c@hotmail.example>\n"
           b"From: support@imolocale.fr\nMessage-ID: <ack-1@imolocale.fr>\n\nBonjour\n--b--\n")
    m = parse(raw)
    assert m.auto_reason == "feedback-report" and m.feedback == "abuse"
    assert m.bounce_of == ("<ack-1@imolocale.fr>",)


@settings(max_examples=300, deadline=None)
@given(name=st.binary(min_size=1, max_size=40), value=st.binary(max_size=200), charset=st.binary(max_size=20))
def test_random_header_bytes_never_raise_anything_but_parse_error(name, value, charset):
    raw = (b"From: a@x.test\n" + name + b": " + value + b"\nSubject: " + value +
           b"\nContent-Type: text/plain; charset=" + charset + b"\n\n" + value)
    try:
        m = parse(raw)
    except ParseError:
        return
    for text in (m.subject, m.from_name, m.text, *(v for _, v in m.headers)):
        text.encode("utf-8")  # clean Unicode: no lone surrogates
