"""core/search.tsquery: the FTS5-style search text as PostgreSQL's to_tsquery input, never a
syntax error (the store runs it against PostgreSQL in tests/integration/test_search.py)."""
from __future__ import annotations

import pytest

from maildesk.core.search import tsquery


@pytest.mark.parametrize("text, query", [
    ("colis", "'colis'"),
    ("rembours*", "'rembours':*"),
    ("colis OR paquet", "'colis' | 'paquet'"),
    ("colis paquet", "'colis' & 'paquet'"),
    ('"colis abîmé" -vendeur', "'colis abîmé' & !'vendeur'"),
    ("l'avion NOT bleu", "'l''avion' & !'bleu'"),
    ("camille@example.fr", "'camille@example.fr'"),
    ("a\\b", "'a\\\\b'"),
    ('"colis non', "'colis non'"),
])
def test_search_syntax_becomes_to_tsquery_operands(text, query):
    assert tsquery(text) == query


@pytest.mark.parametrize("text", ["", "   ", "*", "AND", "OR", "NOT", '""', "( )", "- -"])
def test_nothing_to_look_for_is_an_empty_query(text):
    assert tsquery(text) == ""


def test_a_leading_or_trailing_or_is_dropped():
    assert tsquery("OR colis OR") == "'colis'"
