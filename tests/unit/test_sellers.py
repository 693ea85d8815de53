"""The pure seller rules: registry rows, contact requests (FR/EN), hints,
the outreach clock, the cooperation count and admin decisions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from maildesk.core import policy, sellers
from maildesk.service.seller_desk import leaks
from maildesk.outbound.compose import compose
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
DAY = timedelta(days=1)


# --- import rows ------------------------------------------------------------------

def test_a_good_row_is_normalised():
    row, why = sellers.validate_row({" ID ": "S-1042", "Shop": "  Boutique   Lumière ", "E-mail": "Contact@Lumiere.Example",
                                     "telephone": "+33 1 42 68 53 00", "comment": "ignored"})
    assert why is None
    assert row == sellers.Row("S-1042", "Boutique Lumière", "contact@lumiere.example", "+33 1 42 68 53 00")


@pytest.mark.parametrize("raw, reason", [
    ({"shop_name": "X", "address": "a@b.example"}, "id is missing"),
    ({"id": "S 1", "shop_name": "X", "address": "a@b.example"}, "id 'S 1' must be"),
    ({"id": "S1", "address": "a@b.example"}, "shop_name is missing"),
    ({"id": "S1", "shop_name": "X" * 201, "address": "a@b.example"}, "longer than 200"),
    ({"id": "S1", "shop_name": "X"}, "address is missing"),
    ({"id": "S1", "shop_name": "X", "address": "nobody"}, "'nobody' is not an e-mail address"),
    ({"id": "S1", "shop_name": "X", "address": "a@b"}, "is not an e-mail address"),
    ({"id": "S1", "shop_name": "X", "address": "a@b.example", "phone": "call me"}, "is not a phone number"),
    ({"id": "S1", "shop_name": "X", "address": "a@b.example", "phone": "12"}, "is not a phone number"),
])
def test_bad_rows_are_rejected_with_a_reason(raw, reason):
    row, why = sellers.validate_row(raw)
    assert row is None and reason in why


def test_empty_phone_is_no_phone_and_changes_are_detected():
    row, _ = sellers.validate_row({"id": "S1", "shop_name": "X", "address": "a@b.example", "phone": " "})
    assert row.phone is None
    existing = {"shop_name": "X", "address": "a@b.example", "phone": ""}
    assert sellers.row_changes(existing, row) == {}
    assert sellers.row_changes(existing, sellers.Row("S1", "Y", "a@b.example", "0612345678")) == {
        "shop_name": "Y", "phone": "0612345678"}


# --- contact requests ------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Pouvez-vous me donner les coordonnées du vendeur ?",
    "Bonjour, je voudrais les COORDONNEES DU VENDEUR svp",
    "Je souhaite contacter le vendeur directement.",
    "Puis-je contacter directement le vendeur ?",
    "Comment puis-je joindre ce vendeur ?",
    "Quel est le numéro de téléphone du vendeur ?",
    "Donnez-moi l'adresse e-mail de la boutique.",
    "Could you send me the seller's contact details?",
    "I would like to contact the seller directly.",
    "Can I contact the seller myself?",
    "What is the seller’s email address?",
    "Please give me the contact details of the seller.",
    "How can I reach the vendor?",
])
def test_contact_requests_are_recognised(text):
    assert sellers.asks_for_contact(text)


@pytest.mark.parametrize("text", [
    "Ma commande n'est jamais arrivée.",
    "J'ai essayé de contacter le vendeur directement, sans réponse.",
    "J'ai déjà contacté le vendeur.",
    "Le vendeur ne répond pas à mes messages.",
    "I already tried to contact the seller directly, no answer.",
    "I have contacted the seller twice.",
    "The seller sent the wrong item.",
    "The shop details page was wrong.",
    "",
])
def test_other_texts_are_not_contact_requests(text):
    assert not sellers.asks_for_contact(text)


def test_contact_request_outcome_and_decisions():
    assert sellers.contact_request_outcome(linked=False, failed=False) == "explain"
    assert sellers.contact_request_outcome(linked=True, failed=False) == "explain"
    assert sellers.contact_request_outcome(linked=True, failed=True) == "disclose"
    c = policy.Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1,
                         status="open", first_contact=T0)
    seller = {"id": "S1", "shop_name": "X", "address": "x@shop.example", "phone": None, "status": "active"}
    d = sellers.answer_contact_request(c, CFG, seller, failed=False, now=T0)
    assert [(m.audience, m.template) for m in d.mails] == [("customer", "seller_contact_pending"),
                                                          ("staff", "staff_seller_contact_request")]
    d = sellers.answer_contact_request(c, CFG, seller, failed=True, now=T0)
    assert [(m.audience, m.template) for m in d.mails] == [("customer", "seller_contact_details")]
    assert [e.kind for e in d.events] == ["seller_contact_requested", "seller_details_disclosed"]
    assert d.changes["last_customer_update_at"] == T0


# --- hints and secrecy ------------------------------------------------------------

def test_shop_names_and_addresses_are_found_as_whole_words():
    names = {sellers.name_key("Boutique Lumière"): "S1", sellers.name_key("Zen"): "S2", "ab": "S3"}
    found = sellers.mentioned("Ma lampe de chez BOUTIQUE LUMIERE, vendue par sav@zen.example", names,
                              ["sav@zen.example"])
    assert found == ["boutique lumiere", "sav@zen.example"]
    assert sellers.mentioned("zenith et abc", names, []) == []
    assert sellers.mentioned("Zen", names, []) == ["zen"]


def test_redact_and_leak_check():
    text = sellers.redact("Cliente : Camille@Example.FR (camille@example.fr)", "camille@example.fr", "[x]")
    assert text == "Cliente : [x] ([x])"
    raw = compose(from_addr="support@imolocale.test", from_name="imolocale", to=["x@shop.example"],
                  subject="Réclamation", text="é" * 80 + " camille@example.fr", message_id="<m@imolocale.test>",
                  date=T0)
    assert leaks(raw, "Camille@example.fr")
    clean = compose(from_addr="support@imolocale.test", from_name="imolocale", to=["x@shop.example"],
                    subject="Réclamation", text="rien", message_id="<m@imolocale.test>", date=T0)
    assert not leaks(clean, "camille@example.fr")


# --- the outreach clock -----------------------------------------------------------

def test_reminder_halfway_failure_at_the_deadline_once():
    remind, due = sellers.outreach_times(T0, 48)
    assert (remind, due) == (T0 + 24 * H, T0 + 48 * H)
    step = lambda now, reminded=None, status="waiting": sellers.outreach_step(status, reminded, remind, due, now)
    assert step(T0 + 23 * H) is None
    assert step(T0 + 24 * H) == "remind"
    assert step(T0 + 30 * H, reminded=T0 + 24 * H) is None
    assert step(T0 + 48 * H, reminded=T0 + 24 * H) == "fail"
    assert step(T0 + 72 * H) == "fail"  # down through both moments: no late reminder
    assert step(T0 + 72 * H, status="answered") is None
    assert sellers.outreach_next_due("waiting", None, remind, due) == remind
    assert sellers.outreach_next_due("waiting", T0 + 24 * H, remind, due) == due
    assert sellers.outreach_next_due("failed", None, remind, due) is None


# --- cooperation --------------------------------------------------------------------

def test_the_cooperation_count_keeps_to_the_window_and_to_the_last_reinstatement():
    now = T0 + 100 * DAY
    strikes = [now - 95 * DAY, now - 80 * DAY, now - 10 * DAY, now - DAY, now + DAY]
    assert sellers.cooperation_count(strikes, now, 90) == 3
    assert sellers.cooperation_count(strikes, now, 30) == 2
    assert sellers.cooperation_count(strikes, now, 90, since=now - 5 * DAY) == 1
    assert sellers.cooperation_count([], now, 90) == 0


def test_only_active_sellers_past_the_threshold_are_flagged():
    assert sellers.should_flag("active", 3, 3)
    assert not sellers.should_flag("active", 2, 3)
    assert not sellers.should_flag("flagged", 5, 3)
    assert not sellers.should_flag("restricted", 5, 3)
    assert not sellers.should_flag("active", 5, 0)  # 0 turns flagging off


def test_admin_decisions():
    assert sellers.decide("flagged", "restrict") == "restricted"
    assert sellers.decide("restricted", "terminate") == "terminated"
    assert sellers.decide("terminated", "reinstate") == "active"
    assert sellers.decide("flagged", "reinstate") == "active"
    with pytest.raises(sellers.DecisionError, match="already active"):
        sellers.decide("active", "reinstate")
    with pytest.raises(sellers.DecisionError, match="already restricted"):
        sellers.decide("restricted", "restrict")
    with pytest.raises(sellers.DecisionError, match="unknown decision"):
        sellers.decide("active", "ban")


def test_webhook_backoff_grows_and_is_capped():
    from maildesk.core.sending import backoff  # web hooks retry with the outbox's rhythm
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20) == timedelta(hours=1)


# --- templates ------------------------------------------------------------------------

SELLER = {"id": "S1", "shop_name": "Boutique Lumière", "address": "x@shop.example", "phone": "0612345678",
          "status": "active"}
COMPLAINT = {"ref": "IMO-ABCDE2", "customer_addr": "camille@example.fr", "customer_name": "Camille Martin",
             "status": "open", "order_number": "784512", "owner": None, "first_contact": T0, "subject": "Colis",
             "category": "colis non reçu"}
TEMPLATES = {
    "seller_outreach": ("seller", {"facts": "Commande 784512.", "due": T0 + 48 * H, "hours": 48.0, "followup": False}),
    "seller_reminder": ("seller", {"due": T0 + 48 * H}),
    "seller_decision": ("seller", {"decision": "terminate", "reason": "fraude", "ref": None}),
    "staff_seller_reply": ("staff", {"late": True, "text": "Renvoyé."}),
    "staff_seller_failed": ("staff", {"reason": "deadline", "disclosed": True}),
    "staff_evidence_withheld": ("staff", {"withheld": [{"number": 2, "filename": "IMG.HEIC", "why": "HEIC"}]}),
    "staff_seller_contact_request": ("staff", {"text": "Coordonnées ?"}),
    "staff_seller_unthreaded": ("staff", {"claimed": ["IMO-ABCDE2"], "original_subject": "Re", "text": "?"}),
    "admin_seller_flagged": ("admin", {"count": 3, "window_days": 90.0, "flag_after": 3,
                                       "strikes": [{"at": "2026-11-23T09:00:00+00:00", "kind": "late",
                                                    "ref": "IMO-ABCDE2", "reason": None}]}),
    "seller_contact_pending": ("customer", {"linked": True}),
    "seller_contact_details": ("customer", {}),
}


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_seller_templates_render_with_a_clean_subject_and_no_customer_address_for_sellers(name, lang):
    from maildesk.outbound.templates import Templates
    audience, extra = TEMPLATES[name]
    context = {"now": T0, "cfg": CFG, "support_address": "support@imolocale.test", "brand": "imolocale",
               "complaint": COMPLAINT, "ref": "IMO-ABCDE2", "tag": "[IMO-ABCDE2]", "subject": "Colis", "level": 1,
               "deadlines": policy.deadlines(T0, CFG), "history": [], "latest": None, "first_message": None,
               "seller": SELLER, "staff_name": None, "files": [], **extra}
    rendered = Templates(None, "fr", CFG.tz).render(name, lang, **context)
    assert rendered.subject and "\n" not in rendered.subject
    assert not any(word in rendered.subject for word in ("Bonjour", "Hello"))
    assert rendered.text.strip()
    if audience == "seller":
        assert "camille" not in (rendered.subject + rendered.text).lower()
    if name == "seller_contact_details":
        assert "x@shop.example" in rendered.text and "0612345678" in rendered.text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_outreach_lists_what_it_attaches_and_never_what_was_withheld(lang):
    from maildesk.outbound.templates import Templates
    files = [{"number": 1, "filename": "photo-1.jpg", "type": "image/jpeg", "size": "38 Ko", "state": "attached",
              "detail": "", "problem": None},
             {"number": 2, "filename": "camille-releve.pdf", "type": "application/pdf", "size": "12 Ko",
              "state": "withheld", "detail": "it names the customer", "problem": None}]
    context = {"now": T0, "cfg": CFG, "support_address": "support@imolocale.test", "brand": "imolocale",
               "complaint": COMPLAINT, "ref": "IMO-ABCDE2", "tag": "[IMO-ABCDE2]", "seller": SELLER,
               "facts": "", "due": T0 + 48 * H, "hours": 48.0, "followup": False, "files": files}
    text = Templates(None, "fr", CFG.tz).render("seller_outreach", lang, **context).text
    assert ("Pièce jointe : photo-1.jpg (38 Ko)" if lang == "fr" else "Attached: photo-1.jpg (38 KB)") in text
    assert "releve" not in text and "names the customer" not in text and "camille" not in text.lower()


# --- review fixes -------------------------------------------------------------------------

def _compose(text: str, to: str = "la@shop.fr") -> bytes:
    return compose(from_addr="support@imolocale.test", from_name="imolocale", to=[to], subject="Réclamation",
                   text=text, message_id="<m@imolocale.test>", date=T0)


def test_the_leak_check_and_redaction_match_whole_addresses_only():
    assert not leaks(_compose("Bonjour"), "a@shop.fr")  # the seller la@shop.fr is not the customer a@shop.fr
    assert not leaks(_compose("écrire à a@shop.fr.example"), "a@shop.fr")
    assert not leaks(_compose("voir a@shop.fresh.example"), "a@shop.fr")
    assert leaks(_compose("La cliente est A@Shop.FR."), "a@shop.fr")  # any case, at the end of a sentence
    assert leaks(_compose("(<a@shop.fr>)"), "a@shop.fr")
    assert leaks(_compose("é" * 80 + " a@shop.fr"), "a@shop.fr")  # quoted-printable body
    assert leaks(_compose("x", to="a@shop.fr"), "a@shop.fr")  # headers too
    assert sellers.redact("la@shop.fr et a@shop.fr, A@SHOP.FR.", "a@shop.fr", "[x]") == "la@shop.fr et [x], [x]."


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("name, extra", [
    ("seller_contact_pending", {"linked": True}),
    ("seller_contact_pending", {"linked": False}),
    ("seller_contact_details", {}),
    ("ack", {"contact_request": True}),
])
def test_our_own_answers_do_not_read_as_contact_requests(name, extra, lang):
    """A robot echoing them back unquoted must not make us answer again (and again)."""
    from maildesk.outbound.templates import Templates
    context = {"now": T0, "cfg": CFG, "support_address": "support@imolocale.test", "brand": "imolocale",
               "complaint": COMPLAINT, "ref": "IMO-ABCDE2", "tag": "[IMO-ABCDE2]", "subject": "Colis", "level": 1,
               "deadlines": policy.deadlines(T0, CFG), "history": [], "latest": None, "first_message": None,
               "seller": SELLER, "staff_name": None, "files": [], **extra}
    rendered = Templates(None, "fr", CFG.tz).render(name, lang, **context)
    assert not sellers.asks_for_contact(f"{rendered.subject}\n{rendered.text}")
    assert not sellers.asks_for_contact(rendered.text)


@pytest.mark.parametrize("text", [
    "Je vous demande les coordonnées du vendeur.",
    "Je vous ai demandé les coordonnées du vendeur, j'attends toujours.",
    "I asked you for the seller's contact details last week.",
    "When will I receive the seller's contact details?",
])
def test_customers_repeating_their_request_are_still_heard(text):
    assert sellers.asks_for_contact(text)


def test_a_repeated_contact_request_tells_staff_at_most_and_the_customer_nothing():
    c = policy.Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1,
                         status="open", first_contact=T0)
    seller = {"id": "S1", "shop_name": "X", "address": "x@shop.example", "phone": None, "status": "active"}
    assert sellers.contact_request_outcome(linked=True, failed=False, explained=True) == "repeat"
    assert sellers.contact_request_outcome(linked=True, failed=True, explained=True) == "disclose"
    assert sellers.contact_request_outcome(linked=True, failed=True, disclosed=True) == "repeat"
    d = sellers.answer_contact_request(c, CFG, seller, failed=False, now=T0, explained=True, state="S1:1:waiting")
    assert [(m.audience, m.template) for m in d.mails] == [("staff", "staff_seller_contact_request")]
    assert d.mails[0].context["repeat"] and "last_customer_update_at" not in d.changes
    assert d.events[0].detail == {"seller": "S1", "outcome": "repeat", "state": "S1:1:waiting", "staff_told": True}
    d = sellers.answer_contact_request(c, CFG, seller, failed=False, now=T0, explained=True, staff_told=True)
    assert d.mails == [] and d.events[0].detail["outcome"] == "repeat" and d.events[0].detail["staff_told"] is None
    d = sellers.answer_contact_request(c, CFG, seller, failed=True, now=T0, disclosed=True)
    assert [(m.audience, m.template) for m in d.mails] == [("staff", "staff_seller_contact_request")]
    assert "seller_details_disclosed" not in [e.kind for e in d.events]


# --- issue 12, finding 13: the customer's address in every spelling ------------------------

from tests.unit.test_addresses import VARIANTS  # noqa: E402


@pytest.mark.parametrize("variant", VARIANTS)
def test_redact_removes_every_spelling_of_the_customer_address(variant):
    text = sellers.redact(f"Le client {variant} attend sa lampe.", "jean.dupont@example.fr", "[x]")
    assert "[x]" in text and "dupont" not in text.lower() and text.endswith(" attend sa lampe.")
    assert leaks(_compose(f"Le client {variant} attend sa lampe."), "jean.dupont@example.fr")


def test_redact_leaves_other_addresses_and_words():
    text = "Écrire à marie.dupont@example.fr ou jean.dupont@example.com ; Jean Dupont at example dot org."
    assert sellers.redact(text, "jean.dupont@example.fr", "[x]") == text
    assert not leaks(_compose(text), "jean.dupont@example.fr")


def test_the_leak_check_reads_attachment_file_names():
    """A file name encoded as an RFC 2047 word is invisible in the raw bytes."""
    import base64
    word = base64.b64encode("photo de jean.dupont@example.fr.jpg".encode()).decode()
    raw = (b"From: support@imolocale.test\nTo: la@shop.fr\nSubject: x\nMIME-Version: 1.0\n"
           b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nBonjour\n--b\n'
           b"Content-Type: image/jpeg\nContent-Transfer-Encoding: base64\n"
           b'Content-Disposition: attachment; filename="=?utf-8?b?' + word.encode() + b'?="\n\neA==\n--b--\n')
    assert leaks(raw, "jean.dupont@example.fr")
    assert not leaks(raw.replace(word.encode(), base64.b64encode(b"photo.jpg")), "jean.dupont@example.fr")


# --- the request state, read from facts (P12) ------------------------------------------

def test_the_outreach_state_names_the_seller_and_its_last_outreach():
    assert sellers.outreach_state(None, None) == sellers.UNLINKED
    assert sellers.outreach_state("S1", None) == "S1:-"
    assert sellers.outreach_state("S1", (7, "failed")) == "S1:7:failed"


def test_request_facts_read_the_order_of_the_events():
    assert not sellers.RequestFacts("S1:-").pending()
    assert sellers.RequestFacts("S1:-", last_request=5).pending()
    assert not sellers.RequestFacts("S1:-", last_request=5, last_disclosure=6).pending()
    assert sellers.RequestFacts("S1:-", last_request=7, last_disclosure=6).pending()
    assert sellers.RequestFacts("S1:-", last_disclosure=6, last_failure=5).disclosed()
    assert not sellers.RequestFacts("S1:-", last_disclosure=6, last_failure=8).disclosed()
    explained = ({"at": T0, "outcome": "explain", "state": "S1:1:waiting"},)
    assert sellers.RequestFacts("S1:1:waiting", explained).explained()
    assert not sellers.RequestFacts("S1:2:waiting", explained).explained()  # a new outreach: once more
    assert sellers.RequestFacts(sellers.UNLINKED, ({"at": T0, "outcome": "explain"},)).explained()
    assert sellers.RequestFacts("S1:-", explained).staff_told(T0 - H)
    assert not sellers.RequestFacts("S1:-", explained).staff_told(T0 + H)
    assert not sellers.RequestFacts("S1:-", ({"at": T0, "outcome": "repeat", "staff_told": None},)).staff_told(T0)


def test_a_customer_message_that_asks_replaces_the_plain_staff_notice():
    c = policy.Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1,
                         status="waiting_customer", first_contact=T0)
    seller = {"id": "S1", "shop_name": "X", "address": "x@shop.example", "phone": None, "status": "active"}
    d = sellers.customer_message(c, T0, CFG, "Je voudrais les coordonnées du vendeur", seller, False,
                                 sellers.RequestFacts("S1:-"))
    assert [(m.audience, m.template) for m in d.mails] == [("customer", "seller_contact_pending"),
                                                          ("staff", "staff_seller_contact_request")]
    assert d.changes["status"] == "open"  # the policy's own answer to the message stays
    assert [e.kind for e in d.events] == ["customer_answered", "seller_contact_requested"]
    told = ({"at": T0, "outcome": "explain", "state": "S1:-"},)
    d = sellers.customer_message(c, T0, CFG, "Je voudrais les coordonnées du vendeur", seller, False,
                                 sellers.RequestFacts("S1:-", told))
    assert [(m.audience, m.template) for m in d.mails] == [("staff", "staff_reply")]  # a repeat staff heard of
