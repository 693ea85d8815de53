"""Quote stripping in languages we do not know: an attribution line is known by its shape
(ends in ':', names a date, a time or an address, the quoted block right after it)."""

from __future__ import annotations

import pytest

from maildesk.inbound.reply import strip_quoted

QUOTE = "> Bonjour, votre demande IMO-4K7M2Q est enregistrée.\n> L'équipe support"


@pytest.mark.parametrize("attribution", [
    "02.04.2012 14:20 пользователь Иван Петров <ivan@example.ru> написал:",  # Russian (Yandex, Mail.ru)
    "W dniu 2.04.2012 o 14:20, Jan Kowalski <jan@example.pl> pisze:",  # Polish (Thunderbird)
    "2012/4/2 王伟 <wang@example.cn>:",  # Chinese Gmail
    "2012年4月2日 14:20 山田太郎 <taro@example.jp>:",  # Japanese Gmail
    "2012年4月2日(月) 14:20 山田太郎：",  # Japanese, full-width colon, no address
    "Am 02.04.2012 um 14:20 hat Hans Müller <hans@example.de> geschrieben:",  # German, not "schrieb"
    "Den 2 apr. 2012 kl. 14:20 skrev Sven <sven@example.se>:",  # Swedish
])
def test_a_foreign_attribution_before_the_quote_is_dropped(attribution):
    text = f"Toujours rien reçu.\n\n{attribution}\n{QUOTE}"
    assert strip_quoted(text) == "Toujours rien reçu."


def test_an_attribution_wrapped_in_two_lines_is_dropped_whole():
    text = "Toujours rien reçu.\n\nW dniu 2.04.2012 o 14:20, Jan Kowalski <jan@example.pl>\npisze:\n" + QUOTE
    assert strip_quoted(text) == "Toujours rien reçu."


def test_blank_lines_between_the_attribution_and_the_quote_are_allowed():
    text = "Toujours rien reçu.\n02.04.2012 14:20 пользователь <ivan@example.ru> написал:\n\n" + QUOTE
    assert strip_quoted(text) == "Toujours rien reçu."


def test_the_customers_own_line_ending_in_a_colon_stays():
    text = "Voici ma question:\n> votre demande IMO-4K7M2Q est enregistrée\nPourquoi pas de remboursement ?"
    assert strip_quoted(text) == "Voici ma question:\nPourquoi pas de remboursement ?"


def test_a_dated_line_ending_in_a_colon_stays_when_no_quote_follows():
    text = "J'ai commandé le 02.04.2012, voici le détail:\nune lampe, un abat-jour."
    assert strip_quoted(text) == text


def test_a_greeting_before_an_attribution_is_not_taken_for_its_first_half():
    text = "Hi,\n02.04.2012 14:20 пользователь <ivan@example.ru> написал:\n" + QUOTE + "\nStill nothing."
    assert strip_quoted(text) == "Hi,\nStill nothing."


def test_a_finished_sentence_is_not_taken_for_the_first_half_of_a_wrapped_attribution():
    text = "Commande du 02.04.2012 toujours pas livrée.\nVoici votre réponse:\n" + QUOTE
    assert strip_quoted(text) == "Commande du 02.04.2012 toujours pas livrée.\nVoici votre réponse:"


def test_an_ip_address_is_not_a_date():
    text = "Relais mfsmax.example.jp [192.0.2.45]:\n> 550 unknown user"
    assert strip_quoted(text) == "Relais mfsmax.example.jp [192.0.2.45]:"
