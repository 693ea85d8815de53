"""Staff gotchas (issue 14 finding 12): a colleague missing from [teams], a refused staff mail
explained to the colleague whose address it claimed, staff words in French."""
from __future__ import annotations

from tests.integration.conftest import body
from tests.integration.test_staff import CS, complaint, opened, staff_reply  # noqa: F401 (fixture)
from tests.support import mail

JULIE = "julie@imolocale.test"  # a colleague nobody listed in [teams]
# Workspace before "Start authentication", with no DMARC record (FIELD-NOTES)
NO_DKIM_AR = ("mx.google.com; dkim=pass header.i=@imolocale-test.20230601.gappssmtp.com header.s=20230601; "
              "spf=pass smtp.mailfrom=cs@imolocale.test")


def test_unlisted_colleague_is_kept_on_the_complaint_obeyed_in_nothing_and_told_once(desk, opened):
    ref, note = opened
    desk.write_config(teams={"domains": ["imolocale.test"]})
    desk.deliver(staff_reply(note, "#resolve\nRemboursé ce matin.", sender=JULIE, name="Julie"))
    desk.deliver(mail(sender=JULIE, name="Julie", subject="Question sur un colis", body="#note\nQui gère ça ?"))
    desk.once()
    assert complaint(desk, ref)["status"] == "open"  # the #resolve obeyed nothing
    assert len(desk.rows("SELECT * FROM complaints")) == 1  # no complaint of her own
    kept = desk.rows("SELECT complaint_id FROM messages WHERE kind = 'staff_unlisted' ORDER BY id")
    assert [r["complaint_id"] for r in kept] == [complaint(desk, ref)["id"], None]
    assert desk.sent(to="camille@example.fr") == [] and desk.sent(to=CS) == []  # relayed to nobody
    [told] = desk.sent(to=JULIE)  # one explanation for her two mails, no acknowledgement
    assert "[teams]" in body(told) and "maildesk.toml" in body(told) and "admin@imolocale.test" in body(told)
    assert told["Auto-Submitted"] == "auto-generated"  # her out-of-office will not answer it
    desk.deliver(staff_reply(note, "Et maintenant ?", sender=JULIE, name="Julie"))
    desk.once()
    assert len(desk.sent(to=JULIE)) == 1  # once a day, not once a mail


def test_unlisted_colleague_mail_failing_authentication_writes_to_no_one(desk, opened):
    """Anyone can type an address of the domain: unauthenticated, it is only the admins' news."""
    ref, note = opened
    desk.write_config(teams={"domains": ["imolocale.test"]}, security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note, "#resolve\nRéglé.", sender=JULIE, name="Julie"))
    desk.once()
    assert desk.sent(to=JULIE) == [] and desk.sent(to="camille@example.fr") == []
    [alert] = desk.sent(to="admin@imolocale.test")
    assert "non inscrite dans [teams]" in body(alert)
    assert complaint(desk, ref)["status"] == "open" and len(desk.rows("SELECT * FROM complaints")) == 1


def test_refused_staff_mail_tells_the_claimed_colleague_why_once_an_hour(desk, opened):
    ref, note = opened
    desk.write_config(security={"require_authenticated_staff": True})
    desk.deliver(staff_reply(note, "#resolve\nRéglé.", headers={"Authentication-Results": NO_DKIM_AR}))
    desk.deliver(staff_reply(note, "#resolve\nRéglé, vraiment.", headers={"Authentication-Results": NO_DKIM_AR}))
    desk.once()
    assert complaint(desk, ref)["status"] == "open" and desk.sent(to="camille@example.fr") == []
    [told] = desk.sent(to=CS)  # the real mailbox of the address the mail claimed
    text = body(told)
    assert "n'est pas signé avec la clé DKIM propre à imolocale.test" in text
    assert "imolocale.test ne publie pas de règle DMARC" in text and "quelqu'un a utilisé votre adresse" in text
    # the second refusal of the hour waits for the coalesced notice
    assert desk.rows("SELECT count(*) n FROM notices WHERE kind = 'staff_refused' AND mailed_at IS NULL")[0]["n"] == 1
    [alert] = desk.sent(to="admin@imolocale.test")
    fix = body(alert)
    assert "Démarrer l'authentification" in fix and "imolocale-test.20230601.gappssmtp.com" in fix
    assert '_dmarc.imolocale.test TXT "v=DMARC1' in fix


def test_french_staff_notification_shows_status_and_level_in_french(desk):
    desk.deliver(mail(body="Bonjour, mon colis n'est jamais arrivé."))
    desk.once()
    [note] = desk.sent(to=CS)
    assert "niveau 1 (service client) — statut : en cours" in body(note)
    assert "statut : open" not in body(note)
