"""Which inline images of a staff mail are its signature (service/mail_files.py): small, inline, and
shown by the mail's HTML through `cid:`. Pure functions: no database."""
from __future__ import annotations

from email.message import EmailMessage

from maildesk.service.mail_files import SIGNATURE_IMAGE_MAX, shown_cids, signature_image
from maildesk.store.files import StoredFile


def stored(cid: str | None = "logo@mail.gmail.com", inline: bool = True, size: int = 3000,
           ctype: str = "image/png") -> StoredFile:
    return StoredFile(id=1, number=1, message_row=1, filename="logo.png", content_type=ctype, size=size,
                      sha256="x", content_id=cid, inline=inline, problem=None, not_kept=None, source="staff", direction="in",
                      sender="cs@imolocale.test", at="2026-11-23T09:00:00+00:00")


def gmail_like(cid: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "cs@imolocale.test", "support@imolocale.test", "Re: x"
    msg.set_content("Voici.")
    msg.add_alternative(f'<div>Voici.<br><img src="cid:{cid}" alt="logo"></div>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG" + b"\0" * 100, maintype="image", subtype="png", cid=f"<{cid}>")
    return msg.as_bytes()


def test_the_cids_the_html_shows_are_found_without_brackets_and_case():
    assert shown_cids(gmail_like("ii_Logo123@mail.gmail.com")) == {"ii_logo123@mail.gmail.com"}
    assert shown_cids(None) == set() and shown_cids(b"\xff not a mail") == set()


def test_a_small_inline_image_the_html_shows_is_a_signature():
    shown = shown_cids(gmail_like("logo@mail.gmail.com"))
    assert signature_image(stored("<LOGO@mail.gmail.com>"), shown)


def test_an_image_the_html_does_not_show_a_large_one_or_an_attached_one_is_not():
    shown = {"logo@mail.gmail.com"}
    assert not signature_image(stored("photo@x"), shown)  # inline, small, but not shown: Apple Mail's photo
    assert not signature_image(stored(size=SIGNATURE_IMAGE_MAX + 1), shown)
    assert not signature_image(stored(inline=False), shown)
    assert not signature_image(stored(ctype="application/pdf"), shown)
    assert not signature_image(stored(cid=None), shown)
