"""A search text SQLite refuses as FTS5 syntax is asked again as plain words."""
from maildesk.core.search import plain_words, searchable


def test_each_token_is_quoted_and_quotes_doubled():
    assert plain_words('colis "reçu') == '"colis" """reçu"'
    assert plain_words("l'avion AND") == '"l\'avion" "AND"'


def test_tokens_without_letters_or_digits_are_dropped():
    assert plain_words("( * ) colis") == '"colis"'
    assert plain_words("* ( )") == "" and not searchable("  * ")
