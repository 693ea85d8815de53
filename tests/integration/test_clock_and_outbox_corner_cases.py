"""Corner cases of the clock and the outbox: a broken clock job or a failing sweep row stops
nothing else, two flushers never send twice, robots echoing us are capped, staff moving a
level back is not undone, a secret never shows in a config error."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

from maildesk.config import ConfigError, parse_config
from maildesk.adapters.outbox import FlushResult
from tests.integration.test_clock import H, T0, once_at, open_complaint
from tests.integration.test_staff import staff_reply
from tests.support import config_dict, mail


def test_a_broken_clock_job_does_not_stop_the_inbox(desk):
    app = desk.app()
    calls = []

    def broken(now):
        calls.append(now)
        raise RuntimeError("web hook answered nonsense")

    app.clock_jobs.insert(0, broken)
    desk.deliver(mail())
    assert desk.run_once(app) == 0
    assert calls and len(desk.sent(to="camille@example.fr")) == 1


def test_a_complaint_whose_sweep_fails_is_set_aside_and_the_others_go_on(desk, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(desk.app().templates.directory, templates)
    desk.deliver(mail(sender="a@example.fr"), msg_time=T0)
    desk.deliver(mail(sender="b@example.fr"), msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=1))
    # break the level-2 customer template for a's language only: b writes in English
    desk.deliver(mail(sender="c@example.com", body="Hello, my parcel never arrived and I want a refund please."), msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=2))
    for lang in ("fr",):  # breaks on these complaints' data only (no order number): startup's check passes
        (templates / lang / "escalated_2.txt").write_text("Subject: {{ complaint.order_number.strip() }}\n")
    desk.write_config(policy={"templates": str(templates)})
    sent = once_at(desk, T0 + 24 * H)
    assert [str(m["To"]) for m in sent if "example.com" in str(m["To"])] == ["c@example.com"]
    failed = desk.rows("SELECT c.ref, e.kind FROM events e JOIN complaints c ON c.id = e.complaint_id "
                       "WHERE e.kind = 'sweep_failed'")
    assert len(failed) == 2
    due = desk.rows("SELECT next_due FROM complaints WHERE customer_addr LIKE '%example.fr'")
    assert all(r["next_due"] == (T0 + 25 * H).isoformat() for r in due)


def test_two_flushers_never_send_the_same_mail_twice(desk):
    desk.sink.refuse_all(451)
    desk.deliver(mail())
    desk.once()
    desk.sink.accept_all()
    app1, app2 = desk.app(), desk.app()
    try:
        later = datetime.now(timezone.utc) + timedelta(hours=2)
        rows1 = app1.outbox._claim(app1.outbox.due(later)[0], later)  # app1 is sending these...
        assert len(rows1) == 2
        assert app2.outbox.flush(later).sent == 0  # ...so app2, flushing meanwhile, leaves them
        app1.outbox._send(rows1, later, FlushResult())
    finally:
        app1.close()
        app2.close()
    assert len(desk.sent(to="camille@example.fr")) == 1


def test_automatic_mail_to_one_customer_is_capped_per_hour(desk):
    """Whatever asks for it (a robot echoing us without RFC 3834 headers), at most
    max_auto_replies_per_hour automatic mails go to one address in an hour."""
    from maildesk.core import policy
    ref = open_complaint(desk)  # the acknowledgement is the first
    app = desk.app()
    try:
        complaint = app.store.complaint(ref)
        now = T0 + timedelta(minutes=5)
        with app.store.transaction():
            queued = [app.workflow.queue(complaint, policy.Mail("update", ("camille@example.fr",), "update", "customer"),
                                         now + timedelta(minutes=i)) for i in range(10)]
            relayed = app.workflow.queue(complaint, policy.Mail("relay", ("camille@example.fr",), "relay", "customer",
                                                                context={"text": "Bonjour", "ask": False}), now)
        later = app.workflow.queue(complaint, policy.Mail("update", ("camille@example.fr",), "update", "customer"),
                                   now + timedelta(hours=2))
    finally:
        app.close()
    assert sum(1 for q in queued if q) == 4  # 5 in the hour, the acknowledgement included
    assert relayed and later  # staff answers are never capped; the next hour has room again
    assert len(desk.rows("SELECT * FROM events WHERE kind = 'auto_mail_suppressed'")) == 6


def test_staff_moving_a_complaint_back_to_level_1_is_not_undone_by_the_clock(desk):
    open_complaint(desk)
    once_at(desk, T0 + 24 * H)
    note = next(m for m in desk.sent(to="resolution@imolocale.test"))
    desk.deliver(staff_reply(note, "#level 1", sender="resolution@imolocale.test"), msg_time=T0 + 25 * H)
    once_at(desk, T0 + 25 * H)
    assert desk.rows("SELECT level FROM complaints")[0]["level"] == 1
    sent = once_at(desk, T0 + 26 * H)
    assert [m for m in sent if "camille" in str(m["To"])] == []
    assert desk.rows("SELECT level FROM complaints")[0]["level"] == 1
    sent = once_at(desk, T0 + 48 * H)  # the 48 h rule still holds
    assert desk.rows("SELECT level FROM complaints")[0]["level"] == 3


def test_a_secret_never_appears_in_a_config_error(tmp_path):
    data = config_dict()
    data["smtp"]["password"] = 123456789
    try:
        parse_config(data, tmp_path)
    except ConfigError as e:
        assert "123456789" not in str(e) and "smtp.password" in str(e)
    else:
        raise AssertionError("a number as password must be refused")
