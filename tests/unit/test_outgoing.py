"""compose()'s text-only fast path writes the very bytes EmailMessage would write."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

from hypothesis import HealthCheck, given, settings, strategies as st

from maildesk.outbound import compose as outgoing
from maildesk.outbound.compose import compose

T0 = datetime(2026, 11, 24, 8, 12, 3, tzinfo=timezone.utc)


def reference(**kw) -> bytes:
    """compose() through the stdlib's EmailMessage only (what it did before the fast path)."""
    text = kw.pop("text")
    headers = outgoing._headers(**{k: v for k, v in kw.items() if k not in ("html", "extra_headers")})
    return outgoing._compose_email(headers, text)


def both(**kw) -> tuple[bytes, bytes]:
    kw = {"from_addr": "support@imolocale.test", "from_name": "imolocale", "to": ["camille@example.fr"],
          "subject": "Votre réclamation", "text": "Bonjour,\n", "message_id": "<1.2.imo-4k7m2q@imolocale.test>",
          "date": T0, "in_reply_to": None, "references": (), "auto_submitted": "auto-replied",
          "reply_to": "support@imolocale.test", "reference": "IMO-4K7M2Q", **kw}
    return compose(**kw), reference(**kw)


def test_a_typical_acknowledgement():
    fast, ref = both(subject="[IMO-4K7M2Q] Colis jamais reçu", in_reply_to="<bench-1@example.fr>",
                     references=["<bench-1@example.fr>"],
                     text="Bonjour Camille,\n\nNous avons bien reçu votre réclamation.\n-- \nimolocale\n")
    assert fast == ref
    msg = message_from_bytes(fast, policy=policy.default)
    assert msg["Subject"] == "[IMO-4K7M2Q] Colis jamais reçu"
    assert msg.get_content() == "Bonjour Camille,\n\nNous avons bien reçu votre réclamation.\n-- \nimolocale\n"


def test_long_and_unusual_headers_take_the_stdlib_folding():
    many = [f"<{i}.{'x' * (i * 7)}@example.fr>" for i in range(25)]
    for kw in ({"references": many, "in_reply_to": many[-1]},
               {"to": ["a@example.fr", "b.c+d@example.fr", "e@sub.example.com"] * 5},
               {"from_name": "Service client « imolocale »"},
               {"from_name": "Dupont, Jean (SAV)"},
               {"from_name": "=?utf-8?q?x?="},
               {"subject": "=?utf-8?q?caf=C3=A9?= " + "long " * 30},
               {"subject": ""},
               {"subject": "a\x85b\u2028c\x1dd"},  # line breaks to str.splitlines(): cleaned away
               {"subject": "  spaced   out  "},
               {"text": ""},
               {"text": "a\r\nb\rc\n\nd" + "é" * 200 + "\n" + "x" * 300},
               {"auto_submitted": None, "reply_to": None, "reference": None},
               {"date": T0.astimezone(timezone(timedelta(hours=-3, minutes=-30)))}):
        fast, ref = both(**kw)
        assert fast == ref, kw


header_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True)
domain = st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,12}){0,3}", fullmatch=True)
addresses = st.builds(lambda lo, do: f"{lo}@{do}", local, domain)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=st.one_of(header_text, ascii_text), name=st.one_of(header_text, ascii_text),
       to=st.lists(addresses, min_size=1, max_size=6), text=st.one_of(header_text, st.text(max_size=2000)),
       refs=st.lists(st.builds(lambda a: f"<{a}>", addresses), max_size=12),
       reference=st.one_of(st.none(), ascii_text))
def test_the_fast_path_matches_the_stdlib(subject, name, to, text, refs, reference):
    fast, ref = both(subject=subject, from_name=name, to=to, text=text, references=refs,
                     in_reply_to=refs[-1] if refs else None, reference=reference)
    assert fast == ref


def test_subjects_holding_encoded_word_lookalikes_compose_and_read_back_as_written():
    """A customer's subject "Colis =??b?qQ?=" made composing the accented staff subject raise (issue 12)."""
    for subject in ("[IMO-4K7M2Q] Nouvelle réclamation : Colis =??b?qQ?=",
                    "Réclamation =?x-unknown?q?caf=E9?= reçue",
                    ("é =??q?a?= " + "très long " * 20).strip(),
                    "=?utf-8?b?w6k=?= literal"):
        fast, ref = both(subject=subject)
        assert fast == ref
        assert message_from_bytes(fast, policy=policy.default)["Subject"] == subject
    # a lone surrogate cannot be written by any encoding: it becomes U+FFFD instead of an error
    fast, ref = both(subject="Colis \udcff reçu")
    assert fast == ref
    assert message_from_bytes(fast, policy=policy.default)["Subject"] == "Colis \ufffd reçu"
