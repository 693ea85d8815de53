"""One mapping for the codes the database holds, in the template's language (issue 14 item 9)."""
from maildesk.outbound.templates import Templates


def test_word_filter_speaks_the_templates_language_and_shows_unknown_codes_as_they_are():
    env = Templates().env
    words = '{{ "open"|word("status") }} / {{ 2|word("level") }} / {{ "someday"|word("status") }}'
    assert env.from_string(words).render(lang="fr") == "en cours / équipe de résolution / someday"
    assert env.from_string(words).render(lang="en") == "open / resolution team / someday"
