"""When the customer is told the consumer mediator (L.612-1): unsatisfied, or the target missed; and
#dossier asks for the record to be mailed."""
from datetime import datetime, timedelta, timezone

from maildesk.core import commands, policy
from maildesk.core.policy import Complaint
from tests.support import make_config

MEDIATOR = {"name": "Médiateur FEVAD", "website": "https://www.mediateurfevad.fr"}
CFG = make_config(mediation=MEDIATOR)
BARE = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def resolved(**kw) -> Complaint:
    return Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1, status="resolved",
                     first_contact=T0, resolved_at=T0 + H, satisfaction_asked_at=T0 + H, **kw)


def customer_mails(d):
    return [(m.template, m.context.get("mediation")) for m in d.mails if m.audience == "customer"]


def test_unsatisfied_or_low_rating_names_the_mediator_satisfied_does_not():
    for answer in ("Pas satisfait", "1/5", "2 sur 5"):
        assert customer_mails(policy.customer_message(resolved(), T0 + 2 * H, CFG, answer)) == [("thanks_rating", True)]
    for answer in ("Très satisfaite", "5/5", "3/5"):
        assert customer_mails(policy.customer_message(resolved(), T0 + 2 * H, CFG, answer)) == [("thanks_rating", False)]


def test_no_mediator_configured_names_none():
    assert customer_mails(policy.customer_message(resolved(), T0 + 2 * H, BARE, "1/5")) == [("thanks_rating", False)]


def test_the_missed_target_tells_the_customer_once():
    c = Complaint(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=3, auto_level=3,
                  status="open", first_contact=T0, last_customer_update_at=T0 + 119 * H, target_warned_at=T0 + 96 * H)
    d = policy.sweep(c, T0 + 119 * H, CFG)
    assert [m.template for m in d.mails if m.template == "mediation"] == []
    d = policy.sweep(c, T0 + 120 * H, CFG)
    assert [m.template for m in d.mails if m.audience == "customer"] == ["mediation"]
    after = policy.apply(c, d.changes)
    assert not [m for m in policy.sweep(after, T0 + 121 * H, CFG).mails if m.template == "mediation"]
    assert not [m for m in policy.sweep(c, T0 + 120 * H, BARE).mails if m.template == "mediation"]


def test_hash_dossier_mails_the_customer_and_takes_no_argument():
    command = commands.REGISTRY["dossier"]
    assert command.check("") is None and command.check("now") == "#dossier takes no argument"
    c = resolved()
    d = command.decide(c, T0, CFG, "cs@imolocale.test", "", "")
    assert [(m.template, m.kind, m.to) for m in d.mails] == [("dossier", "dossier", ("camille@example.fr",))]
    assert "#dossier" in commands.help_text()
