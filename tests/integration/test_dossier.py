"""The dossier: a dated record of the written complaint for the consumer mediator, written by
`maildesk dossier REF --out FILE.html` and sent to the customer with `#dossier` as an attachment."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from freezegun import freeze_time

from tests.integration.conftest import body
from tests.integration.test_clock import H, T0, once_at, open_complaint
from tests.integration.test_staff import CS, staff_reply
from tests.support import mail

HOSTILE = "Mon colis <script>alert('x')</script> & rien </pre><img src=x onerror=alert(1)>"


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def worked(desk):
    """Camille's complaint with a hostile second message, a staff note, an answer and a resolution."""
    ref = open_complaint(desk)
    desk.deliver(mail(subject=f"Re: [{ref}] Colis jamais reçu", body=HOSTILE), msg_time=T0 + 2 * H)
    sent = once_at(desk, T0 + 2 * H)
    note = next(m for m in sent if CS in str(m["To"]))
    desk.deliver(staff_reply(note, "#note\nClient difficile, secret interne"), msg_time=T0 + 3 * H)
    desk.deliver(staff_reply(note, "Nous relançons le vendeur aujourd'hui."), msg_time=T0 + 3 * H)
    once_at(desk, T0 + 3 * H)
    with freeze_time(T0 + 4 * H, real_asyncio=True):
        assert desk.cli_here("resolve", ref, "--note", "Remboursement de 45 €.")[0] == 0
    return ref, note


def test_the_dossier_file_names_the_first_contact_and_escapes_everything(desk, worked):
    ref, _ = worked
    out = desk.dir / "dossier.html"
    with freeze_time(T0 + 5 * H):
        code, printed = desk.cli_here("dossier", ref.lower(), "--out", str(out))
    assert code == 0 and str(out) in printed
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags  # the customer's text is text, not markup
    text = "".join(page.text)
    assert f"Dossier de la réclamation {ref}" in text
    assert "Première réclamation écrite" in html and "23/11/2026 10:00" in text  # 09:00 UTC, Paris time
    assert "n'est jamais arrivée" in text and HOSTILE in text  # both customer messages, verbatim
    assert "Nous relançons le vendeur" in text and "Remboursement de 45 €" in text  # what we did
    assert "déclarée résolue" in text and "23/11/2026 14:00" in text  # and when (the dossier's own date)
    assert "secret interne" not in html and CS not in html  # never a staff note or a staff address
    assert "http" not in html.replace("http-equiv", "")  # self-contained: nothing fetched


def test_an_unknown_reference_is_refused(desk, worked):
    result = desk.cli("dossier", "IMO-ZZZZZZ", "--out", str(desk.dir / "x.html"))
    assert result.returncode == 1 and "no complaint IMO-ZZZZZZ" in result.stderr
    assert not (desk.dir / "x.html").exists()


def test_hash_dossier_mails_it_to_the_customer_as_an_attachment(desk, worked):
    ref, note = worked
    desk.sink.clear()
    desk.deliver(staff_reply(note, "#dossier"), msg_time=T0 + 6 * H)
    sent = once_at(desk, T0 + 6 * H)
    [out] = [m for m in sent if "camille" in str(m["To"])]
    assert ref in out["Subject"] and "ci-joint le dossier" in body(out)
    [att] = list(out.iter_attachments())
    assert att.get_filename() == f"dossier-{ref}.html" and att.get_content_type() == "text/html"
    html = att.get_content()
    text = "".join(Page(html).text)
    assert "23/11/2026 10:00" in text and "n'est jamais arrivée" in text and HOSTILE in text
    assert "secret interne" not in html and "<script>" not in html
    assert desk.rows("SELECT count(*) AS n FROM events WHERE kind = 'dossier_sent'")[0]["n"] == 1
