"""core/privacy.py: the keyed hash, anonymised values, event details, who may not be erased."""
from __future__ import annotations

import json

from maildesk.core import privacy


def test_the_keyed_hash_folds_spellings_and_needs_the_key():
    key = b"k" * 32
    h = privacy.keyed_hash(key, "Camille.Martin+shop@gmail.com")
    assert h == privacy.keyed_hash(key, "camillemartin@googlemail.com")
    assert h != privacy.keyed_hash(b"x" * 32, "camillemartin@gmail.com")
    assert h != privacy.keyed_hash(key, "camille@gmail.com") and len(h) == 64


def test_an_erased_address_names_nobody_and_cannot_be_mailed():
    a = privacy.erased_address("IMO-4K7M2Q")
    assert a == "imo-4k7m2q@erased.invalid" and privacy.is_erased(a)
    assert not privacy.is_erased("camille@example.fr") and not privacy.is_erased(None)


def test_event_details_keep_figures_and_codes_and_lose_words():
    detail = json.dumps({"level": 2, "reason": "24h", "customer": "camille@example.fr", "text": "ma lampe",
                         "seller": "S-1042", "owner": "julie@imolocale.test", "satisfied": True,
                         "why": "auto-reply", "outcome": "a long sentence with spaces", "late": None})
    assert json.loads(privacy.scrub_detail(detail)) == {
        "level": 2, "reason": "24h", "customer": "[erased]", "text": "[erased]", "seller": "S-1042",
        "owner": "[erased]", "satisfied": True, "why": "[erased]", "outcome": "[erased]", "late": None}
    assert privacy.scrub_detail("not json") == json.dumps({"detail": "[erased]"})
    again = privacy.scrub_detail(detail)
    assert privacy.scrub_detail(again) == again  # idempotent


def test_staff_and_sellers_are_ambiguous():
    staff = {"cs@imolocale.test": "customer_service"}
    assert "staff" in privacy.ambiguous("CS@imolocale.test", staff, set())
    assert "seller" in privacy.ambiguous("shop@x.example", staff, {"shop@x.example"})
    assert privacy.ambiguous("camille@example.fr", staff, {"shop@x.example"}) is None


def test_cc_lists_lose_the_person_only():
    cc = json.dumps(["Camille@Example.fr", "bob@example.org"])
    assert json.loads(privacy.drop_address(cc, "camille@example.fr")) == ["bob@example.org"]
    assert privacy.drop_address(None, "camille@example.fr") is None


def test_masking_keeps_every_offset():
    data = b"a sender=Camille@example.fr b customer=camille@example.fr\n"
    masked, n = privacy.mask_spans(data, [b"camille@example.fr"])
    assert n == 2 and len(masked) == len(data) and b"camille" not in masked.lower()
    assert masked.startswith(b"a sender=xxxx")


def test_raw_mail_and_text_redacted():
    raw = b"To: Camille@Example.fr\r\nCc: bob@example.org\r\n\r\nhi"
    assert privacy.redact_bytes(raw, "camille@example.fr", "erased@erased.invalid") == \
        b"To: erased@erased.invalid\r\nCc: bob@example.org\r\n\r\nhi"
    assert privacy.redact_text("write to camille[at]example.fr", "camille@example.fr", "X") == "write to X"
