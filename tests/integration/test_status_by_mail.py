"""Status by mail (issue 18 item 5): "statut" on a complaint gets one mail with where it stands;
no clock moves, nothing reopens, the team hears nothing, the timeline keeps the message."""
from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

from tests.integration.conftest import body
from tests.integration.test_clock import H, T0, once_at, open_complaint
from tests.support import mail

CAMILLE = "camille@example.fr"


def row(desk, ref):
    return dict(desk.rows("SELECT * FROM complaints WHERE ref = ?", ref)[0])


def ask(desk, ref, text, at, **kw):
    desk.deliver(mail(subject=f"Re: [{ref}] Colis jamais reçu", body=text, **kw), msg_time=at)
    return once_at(desk, at)


def test_statut_answers_the_customer_and_moves_no_clock(desk):
    ref = open_complaint(desk)
    before = row(desk, ref)
    assert before["next_due"] and before["last_customer_update_at"]
    sent = ask(desk, ref, "Bonjour,\n\nOù en est ma réclamation ?\n\nMerci\nCamille", T0 + 2 * H,
               message_id="<statut-1@example.fr>")
    [answer] = sent  # the customer only: the team is not notified
    assert CAMILLE in str(answer["To"]) and answer["Subject"] == f"[{ref}] Colis jamais reçu"
    assert answer["In-Reply-To"] == "<statut-1@example.fr>"
    text = body(answer)
    assert "notre service client" in text and "prochaine échéance : le 24/11/2026" in text
    assert row(desk, ref) == before  # every field: next_due, last_customer_update_at, status, level...
    [msg] = desk.rows("SELECT kind FROM messages WHERE message_id = '<statut-1@example.fr>'")
    assert msg["kind"] == "status_request"
    assert [e["kind"] for e in desk.rows("SELECT kind FROM events WHERE kind = 'status_requested'")] == \
        ["status_requested"]
    # and the clock then runs as if nothing had been asked: the 24 h step comes on time
    assert once_at(desk, T0 + 24 * H - timedelta(minutes=1)) == []
    assert any(CAMILLE in str(m["To"]) for m in once_at(desk, T0 + 24 * H + timedelta(minutes=1)))
    assert row(desk, ref)["level"] == 2


def test_status_on_a_resolved_complaint_does_not_reopen_it(desk):
    ref = open_complaint(desk)
    with freeze_time(T0 + H, real_asyncio=True):
        assert desk.cli_here("resolve", ref, "--note", "Remboursé.")[0] == 0
    desk.sink.clear()
    before = row(desk, ref)
    assert before["status"] == "resolved"
    [answer] = ask(desk, ref, "status?", T0 + 3 * H)
    assert "nous l'avons résolue" in body(answer)
    assert row(desk, ref) == before


def test_a_longer_message_with_statut_is_news_for_the_team(desk):
    ref = open_complaint(desk)
    desk.sink.clear()
    sent = ask(desk, ref, "Le statut de ma commande indique livré mais je n'ai toujours rien reçu.", T0 + 2 * H)
    assert desk.sent(to="cs@imolocale.test") and not any(CAMILLE in str(m["To"]) for m in sent)
