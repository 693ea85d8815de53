"""Status by mail (core/status_request.py): only a short "statut" / "where is my complaint" counts;
the answer is one mail and one event, and it changes nothing on the complaint."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maildesk.core import status_request
from maildesk.core.policy import Complaint
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


@pytest.mark.parametrize("text", [
    "statut", "Statut ?", "STATUS", "status?", "Où en est ma réclamation ?", "ou en est ma demande",
    "Bonjour,\n\nOù en est mon dossier ?\n\nMerci\nCamille", "Quel est le statut de ma réclamation ?",
    "Hello, what is the status of my complaint? Thanks", "Where is my complaint at?", "Status update?",
    "Statut svp", "Bonjour, quel est le statut ?\nCordialement,\nCamille Martin",
    "statut\n\nEnvoyé de mon iPhone", "status\n-- \nJohn Smith\nACME Ltd, 12 High Street, London",
    "Où en êtes-vous ?", "où en est ma réclamation\u00a0?",
])
def test_a_short_status_question_counts(text):
    assert status_request.is_status_request(text)


@pytest.mark.parametrize("text", [
    "",  # nothing at all is not a question
    "Le statut de ma commande indique livré mais je n'ai toujours rien reçu, c'est inadmissible.",
    "statut : toujours pas reçu",
    "Status of my order says delivered but nothing arrived",
    "What is the status of the refund? I returned the item two weeks ago.",
    "Je voudrais changer le statut de ma réclamation en urgent",
    "Bonjour, où en est ma réclamation ? Le vendeur ne répond pas et j'ai besoin du colis avant Noël.",
    "Merci, c'est résolu",
    "statut statut statut statut",
    "Où est mon colis ?",  # a question about the parcel: news for the team
    "Des nouvelles ?", "Any news?", "Any update?",  # vague nudges: a person answers them
    "5/5",
    "non",
    "Bonjour,\n\n" + "Mon colis n'est jamais arrivé et le statut n'a pas bougé depuis une semaine. " * 3,
])
def test_near_misses_are_news_for_the_team(text):
    assert not status_request.is_status_request(text)


def _complaint(**kw) -> Complaint:
    fields = dict(ref="IMO-4K7M2Q", customer_addr="camille@example.fr", lang="fr", level=1, status="open",
                  first_contact=T0, last_customer_update_at=T0 + 2 * H)
    fields.update(kw)
    return Complaint(**fields)


def test_the_answer_changes_nothing_and_names_the_next_deadline():
    d = status_request.answer(_complaint(), T0 + 5 * H, CFG)
    assert dict(d.changes) == {}
    [mail] = d.mails
    assert (mail.template, mail.to, mail.audience) == ("status", ("camille@example.fr",), "customer")
    assert mail.context["next_deadline"] == T0 + 24 * H and mail.context["next_deadline_name"] == "24h"
    assert [e.kind for e in d.events] == ["status_requested"]


def test_at_level_two_the_next_deadline_is_48h_and_a_resolved_complaint_has_none():
    assert status_request.answer(_complaint(level=2), T0 + 30 * H, CFG).mails[0].context["next_deadline"] \
        == T0 + 48 * H
    resolved = status_request.answer(_complaint(status="resolved", resolved_at=T0 + 6 * H), T0 + 7 * H, CFG)
    assert resolved.mails[0].context["next_deadline"] is None and dict(resolved.changes) == {}
