"""Categories (issue 18 item 2): the suggestion for a new complaint, what #category accepts,
and [categories] in the config. Pure rules, no I/O."""
from datetime import datetime, timedelta, timezone

import pytest

from maildesk.config import ConfigError
from maildesk.config.sections import DEFAULT_CATEGORIES
from maildesk.core import categories
from maildesk.core.commands import REGISTRY
from maildesk.core.policy import Complaint
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
C = Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1, status="open",
              first_contact=T0 - timedelta(hours=2))
STAFF = "julie@imolocale.test"


def suggest(subject, text=""):
    return categories.suggest(subject, text, CFG.categories)


def test_the_shipped_categories_are_the_issue_s_eight():
    assert list(CFG.categories) == ["colis non reçu", "article endommagé", "non conforme", "remboursement",
                                    "retour", "paiement", "vendeur injoignable", "autre"]


@pytest.mark.parametrize("subject, text, expected", [
    ("Colis jamais arrivé", "Bonjour, toujours rien.", "colis non reçu"),
    ("COLIS NON RECU", "", "colis non reçu"),  # no accents, upper case
    ("Order", "My parcel never arrived, please help", "colis non reçu"),
    ("Vase cassé", "Le vase est arrivé en morceaux.", "article endommagé"),
    ("Wrong size", "I got a wrong size shirt", "non conforme"),
    ("Je veux être remboursée", "", "remboursement"),
    ("Refund please", "", "remboursement"),
    ("Retour", "Comment faire le retour ?", "retour"),
    ("Débitée deux fois", "Ma carte a été débitée deux fois", "paiement"),
    ("Le vendeur ne répond pas", "Vendeur injoignable depuis 10 jours", "vendeur injoignable"),
    ("Question", "Bonjour, une question sur ma commande", "autre"),
    ("", "", "autre"),
])
def test_a_new_complaint_gets_the_category_its_words_point_to(subject, text, expected):
    assert suggest(subject, text) == expected


def test_only_whole_words_match():
    assert suggest("Retourner", "") == "retour"  # listed as its own word
    assert suggest("Retournement de situation", "") == "autre"  # 'retour' is not a word in it
    assert suggest("Unpaid", "") == "autre"  # 'paid' inside another word


def test_the_subject_weighs_more_than_the_text_and_ties_go_to_the_first_listed():
    assert suggest("Remboursement", "le colis est cassé") == "remboursement"
    assert suggest("", "refund, but also damaged") == "article endommagé"  # one hit each: listed first wins


def test_only_the_opening_of_a_long_message_is_read():
    assert suggest("", "x " * categories.TEXT_LIMIT + "refund") == "autre"


def test_staff_may_type_a_category_as_they_like():
    assert categories.find("Colis Non Recu", CFG.categories) == "colis non reçu"
    assert categories.find("  article   endommage ", CFG.categories) == "article endommagé"
    assert categories.find("autre", CFG.categories) == "autre"
    assert categories.find("livraison", CFG.categories) is None


def test_category_changes_the_complaint_and_records_the_change():
    d = REGISTRY["category"].decide(C, T0, CFG, STAFF, "remboursement", "")
    assert dict(d.changes) == {"category": "remboursement"}
    assert [(e.kind, e.detail) for e in d.events] == [("categorised", {"category": "remboursement",
                                                                       "previous": "autre"})]
    assert d.mails == []


def test_the_same_category_again_changes_nothing():
    d = REGISTRY["category"].decide(C, T0, CFG, STAFF, "Autre", "")
    assert dict(d.changes) == {} and d.events == [] and d.mails == []


def test_an_unknown_category_gets_the_staff_member_the_valid_ones_and_changes_nothing():
    d = REGISTRY["category"].decide(C, T0, CFG, STAFF, "livraison", "")
    assert dict(d.changes) == {} and d.events == []
    [mail] = d.mails
    assert (mail.template, mail.to, mail.audience) == ("staff_command_error", (STAFF,), "staff")
    [error] = mail.context["errors"]
    assert "'livraison' is not a category" in error
    assert all(name in error for name in DEFAULT_CATEGORIES)


def test_category_needs_a_name():
    assert REGISTRY["category"].check("") == "#category needs an argument (#category NAME: set the complaint's " \
        "category (an unknown name gets you the list))"


def test_the_config_replaces_the_categories_and_always_keeps_autre():
    cfg = make_config(categories={"livraison": ["livraison", "delivery"], "casse": ["cassé"]})
    assert cfg.categories == {"livraison": ("livraison", "delivery"), "casse": ("cassé",), "autre": ()}
    assert categories.suggest("Problème de livraison", "", cfg.categories) == "livraison"
    assert "categories" not in " ".join(cfg.unknown)


@pytest.mark.parametrize("raw, words", [
    ({"livraison": "delivery"}, "must be a list of keywords"),
    ({"livraison": ["", "x"]}, "must be a list of keywords"),
    ({}, "must be a table"),
])
def test_a_bad_categories_table_is_refused_with_the_key(raw, words):
    with pytest.raises(ConfigError, match=words):
        make_config(categories=raw)
