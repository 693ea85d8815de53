"""The consumer mediator (Code de la consommation L.612-1, L.616-1, R.616-1): named, with its website
and the one-year limit from the written complaint (L.612-2), to a customer left unsatisfied and to one
whose complaint missed the resolution target; never to a satisfied customer."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests.integration.conftest import body
from tests.integration.test_clock import H, T0, once_at, open_complaint
from tests.support import mail

MEDIATOR = {"name": "Médiateur du e-commerce de la FEVAD", "website": "https://www.mediateurfevad.fr",
            "address": "60 rue La Boétie, 75008 Paris"}


@pytest.fixture
def mediated(desk):
    desk.write_config(mediation=MEDIATOR)
    return desk


def to_camille(sent) -> list[str]:
    return [body(m) for m in sent if "camille" in str(m["To"])]


def names_the_mediator(text: str) -> bool:
    return MEDIATOR["name"] in text and MEDIATOR["website"] in text


def rated(desk, answer: str) -> list[str]:
    ref = open_complaint(desk)
    with freeze_time(T0 + 2 * H, real_asyncio=True):
        assert desk.cli_here("resolve", ref)[0] == 0
    assert not any(names_the_mediator(body(m)) for m in desk.sent())  # not in the resolution mail
    desk.deliver(mail(subject=f"Re: [{ref}] Colis", body=answer), msg_time=T0 + 3 * H)
    return to_camille(once_at(desk, T0 + 3 * H))


def test_an_unsatisfied_customer_is_told_the_mediator_and_the_year_from_first_contact(mediated):
    [thanks] = rated(mediated, "Pas satisfait du tout.")
    assert names_the_mediator(thanks) and MEDIATOR["address"] in thanks
    assert "un an à compter de votre réclamation écrite" in thanks and "23/11/2026" in thanks
    assert "L.612-1" in thanks


def test_a_low_rating_counts_as_unsatisfied(mediated):
    [thanks] = rated(mediated, "1/5")
    assert names_the_mediator(thanks)


def test_a_satisfied_customer_is_not_sent_to_the_mediator(mediated):
    [thanks] = rated(mediated, "5/5, merci beaucoup")
    assert "Merci pour votre réponse" in thanks and "médiateur" not in thanks.lower()


def test_the_missed_resolution_target_names_the_mediator_once(mediated):
    ref = open_complaint(mediated)
    before = []
    for hours in (24, 48, 72, 96, 119):
        before += to_camille(once_at(mediated, T0 + hours * H))
    assert before and not any(names_the_mediator(text) for text in before)
    at_target = to_camille(once_at(mediated, T0 + 120 * H))
    [mediation] = [text for text in at_target if names_the_mediator(text)]
    assert ref in mediation and "23/11/2026" in mediation and "un an" in mediation
    later = to_camille(once_at(mediated, T0 + 144 * H))
    assert not any(names_the_mediator(text) for text in later)


def test_english_customers_get_it_in_english(mediated):
    ref = open_complaint(mediated, subject="Parcel never arrived", body="Hello, my parcel never arrived. Can you help?")
    with freeze_time(T0 + 2 * H, real_asyncio=True):
        assert mediated.cli_here("resolve", ref)[0] == 0
    mediated.deliver(mail(subject=f"Re: [{ref}] Parcel", body="Not satisfied."), msg_time=T0 + 3 * H)
    [thanks] = to_camille(once_at(mediated, T0 + 3 * H))
    assert names_the_mediator(thanks) and "one year from your written complaint" in thanks


def test_check_warns_while_the_mediator_is_not_filled_in(desk):
    doc = json.loads(desk.cli("check", "--json").stdout)
    assert any("mediation.name" in w and "L.612-1" in w for w in doc["warnings"])
    text = desk.cli("check").stdout
    assert "warn  config       mediation.name, mediation.website, mediation.address not set" in text
    desk.write_config(mediation=MEDIATOR)
    assert json.loads(desk.cli("check", "--json").stdout)["warnings"] == []
    desk.write_config(mediation={"website": "www.mediateurfevad.fr"})
    bad = desk.cli("check")
    assert bad.returncode == 2 and "mediation.website must start with http" in bad.stderr
