from datetime import datetime, timezone
from email import message_from_bytes, policy as email_policy

import pytest
from aiosmtplib.email import parse_address, quote_address

from maildesk.core.addresses import Spellings, fold, mailbox_key, needs_smtputf8, sendable, split
from maildesk.outbound.compose import compose
from tests.support import LINEAR, growth
from tests.unit.address_shapes import SHAPES


@pytest.mark.parametrize("spelling, key", [
    ("Bob@Example.TEST", "bob@example.test"),
    ("bob+1@example.test", "bob@example.test"),
    ("bob+a+b@example.test", "bob@example.test"),
    ("b.o.b@example.test", "b.o.b@example.test"),        # dots matter outside Gmail
    ("B.o.B+x@gmail.com", "bob@gmail.com"),
    ("bob@googlemail.com", "bob@gmail.com"),
    ('"a+b"@example.test', '"a+b"@example.test'),         # a quoted local part is taken as it is
    ("+only@example.test", "+only@example.test"),         # nothing left without the tag: keep it
    ("not-an-address", "not-an-address"),
])
def test_spellings_of_one_mailbox_share_a_key(spelling, key):
    assert mailbox_key(spelling) == key


def test_different_mailboxes_keep_different_keys():
    assert mailbox_key("bob@example.test") != mailbox_key("bobby@example.test")
    assert mailbox_key("bob@example.test") != mailbox_key("bob@example.org")


# --- sendable ------------------------------------------------------------------------------

SENDABLE = [a for a, why in SHAPES if not why]


def test_the_table_is_large_and_covers_both_outcomes():
    assert len(SHAPES) >= 130 and len(set(a for a, _ in SHAPES)) == len(SHAPES)
    assert 40 <= len(SENDABLE) <= len(SHAPES) - 60


@pytest.mark.parametrize("address, why", SHAPES, ids=[repr(a)[:40] for a, _ in SHAPES])
def test_sendable_says_yes_or_why_not(address, why):
    ok, reason = sendable(address)
    if why:
        assert not ok and why in reason, reason
    else:
        assert ok and reason == "", reason


@pytest.mark.parametrize("address", SENDABLE, ids=[repr(a)[:40] for a in SENDABLE])
def test_a_sendable_address_is_what_aiosmtplib_sends_and_what_to_shows(address):
    quote_address(address)  # what the outbox's library does in RCPT TO: no ValueError
    assert split(parse_address(address)) == split(address)
    raw = compose(from_addr="support@imolocale.test", from_name="imolocale", to=[address], subject="s",
                  text="t", message_id="<1@imolocale.test>", date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    if address.isascii():  # (an internationalized one needs the SMTPUTF8 headers of Build 2)
        assert f"\nTo: {address}\n".encode() in raw
        [read] = message_from_bytes(raw, policy=email_policy.default)["To"].addresses
        assert split(read.addr_spec) == split(address)


def test_to_shows_a_quoted_local_part_as_the_envelope_does():
    raw = compose(from_addr="support@imolocale.test", from_name="imolocale", to=['"a,b"@x.test'], subject="s",
                  text="t", message_id="<1@imolocale.test>", date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert b'\nTo: "a,b"@x.test\n' in raw
    assert quote_address('"a,b"@x.test') == '<"a,b"@x.test>'


def test_internationalized_addresses_are_sendable_with_smtputf8():
    assert sendable("jörg.müller@exemple.de") == (True, "")
    assert needs_smtputf8("jörg.müller@exemple.de") and needs_smtputf8("a@müller.de")
    assert not needs_smtputf8("a@xn--mller-kva.de")


# --- spellings of one address ----------------------------------------------------------------

CUSTOMER = "jean.dupont@example.fr"
VARIANTS = [
    "jean.dupont@example.fr",                      # exact
    "JEAN.DUPONT@EXAMPLE.FR",                      # case
    "Jean.Dupont+boutique@example.fr",             # +tag
    "jean.dupont%40example.fr",                    # percent-encoded, as in tracking links
    "https://t.tracker.test/c?u=jean.dupont%40example.fr&id=7",
    "jean.dupont&#64;example.fr",                  # HTML entities
    "jean.dupont&#x40;example.fr",
    "jean.dupont&commat;example.fr",
    "jean.dupont @ example.fr",                    # spaced
    "jean.dupont [at] example [dot] fr",
    "jean.dupont(at)example(dot)fr",
    "jean.dupont at example dot fr",
    "jean.dupont arobase example point fr",
    "jean.dupont＠example.fr",                     # full-width at
    "ｊｅａｎ．ｄｕｐｏｎｔ＠ｅｘａｍｐｌｅ．ｆｒ",  # all full-width
    "jean.dupont\u200b@example.fr",               # zero-width before @
    "je\u200ban.du\u200dpont@exa\u2060mple.fr\ufeff",  # zero-width anywhere
    '"jean.dupont"@example.fr',                    # quoted local part
    "jeandupont@example.fr",                       # without its dots
    "j.e.a.n.d.u.p.o.n.t@example.fr",
    "mailto:jean.dupont@example.fr",
    "<jean.dupont@example.fr>",
    "jean.dupont%2540example.fr",                  # encoded twice
    "jean.dupont&amp;#64;example.fr",
    "jean.dupont\\u0040example.fr",
    "jean&#46;dupont&#64;example&#46;fr",
    "%6A%65%61%6E.dupont@example.fr",
    "jean.dupont﹫example.fr",
    "jean.dupont@example\u3002fr",
    "jean.dupont@\nexample.fr",
    "photo_jean.dupont@example.fr.jpg",            # a file name
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_spelling_of_the_address_is_found_and_removed(variant):
    text = f"Bonjour, la cliente ({variant}) attend. Merci."
    redacted = Spellings(CUSTOMER).redact(text, "[X]")
    assert redacted.startswith("Bonjour, la cliente (") and redacted.endswith(") attend. Merci.")
    assert "[X]" in redacted and not Spellings(CUSTOMER).found(redacted)
    assert "dupont" not in redacted.lower() and "example" not in redacted.lower()


@pytest.mark.parametrize("other", [
    "marie.jean.dupont@example.fr", "xjean.dupont@example.fr", "jean.dupontx@example.fr",
    "jean.dupond@example.fr", "jean.dupont@example.com", "jean.dupont@example.fr.evil.test",
    "jean.dupont@example.fresh", "jean.dupont@example.fr.jpgx", "jean.dupont", "example.fr", "Jean Dupont", "Jean at example dot org",
    "jean.dupont est venu à example.fr", "%40", "&commat;",
])
def test_other_addresses_and_words_are_left_alone(other):
    text = f"Voir {other} ici."
    assert Spellings(CUSTOMER).redact(text, "[X]") == text


def test_gmail_dots_and_domains_and_idn_forms():
    assert Spellings("j.dupont@gmail.com").redact("jdupont@googlemail.com", "X") == "X"
    assert Spellings("a@müller.de").redact("a@xn--mller-kva.de, a@MÜLLER.de", "X") == "X, X"
    assert Spellings("a@xn--mller-kva.de").redact("a@müller.de", "X") == "X"


def test_fold_keeps_a_map_to_the_original_text():
    text = "A&#64;B %41 ＠ x\u200by  z"
    folded, starts, ends = fold(text)
    assert folded == "a@b a @ xy z"
    assert [text[s:e] for s, e in zip(starts, ends)][1] == "&#64;"
    assert [text[s:e] for s, e in zip(starts, ends)][4] == "%41"



def test_redaction_is_linear_on_hostile_text():
    """1 MB of near-misses in every encoding costs about ten times 100 KB (quadratic: 100)."""
    unit = "j.e.a.n.d.u.p.o.n.t%2540&#64;é\u200b＠ [at] (dot) jean.dupont@example.  jean.dupont at example dot "
    small = (unit * (100_000 // len(unit) + 1))[:100_000]
    large = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    assert growth(lambda text: Spellings(CUSTOMER).redact(text, "[X]"), small, large) < LINEAR
