"""The dispute policy as pure functions: timelines walked with explicit times."""
from datetime import datetime, timedelta, timezone

import pytest

from maildesk.core import policy
from maildesk.core.policy import Complaint
from tests.support import make_config

CFG = make_config()
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def new(**kw) -> Complaint:
    base = dict(ref="IMO-ABCDE2", customer_addr="camille@example.fr", lang="fr", level=1, status="open",
                first_contact=T0, last_customer_update_at=T0)
    base.update(kw)
    return Complaint(**base)


def run(c: Complaint, now: datetime):
    d = policy.sweep(c, now, CFG)
    return policy.apply(c, d.changes), d


def kinds(d):
    return [(m.audience, m.template) for m in d.mails]


def test_open_acknowledges_customer_and_notifies_level_1():
    d = policy.open_complaint(new(), T0, CFG)
    assert kinds(d) == [("customer", "ack"), ("staff", "staff_new")]
    assert d.mails[1].to == ("cs@imolocale.test",)
    assert d.changes["last_customer_update_at"] == T0


def test_flooded_address_gets_no_ack_but_staff_still_know():
    d = policy.open_complaint(new(), T0, CFG, send_ack=False)
    assert kinds(d) == [("staff", "staff_new")]
    assert [e.kind for e in d.events] == ["opened", "ack_suppressed"]


def test_a_flooding_mailbox_complaint_is_left_to_the_coalesced_notice():
    d = policy.open_complaint(new(), T0, CFG, send_ack=False, notify_staff=False)
    assert kinds(d) == []
    assert [e.kind for e in d.events] == ["opened", "ack_suppressed", "notify_coalesced"]


def test_nothing_happens_a_minute_before_24h():
    c = new()
    c, d = run(c, T0 + 24 * H - timedelta(minutes=1))
    assert d.mails == [] and c.level == 1


def test_escalates_to_level_2_at_exactly_24h():
    c, d = run(new(), T0 + 24 * H)
    assert c.level == 2
    assert kinds(d) == [("customer", "escalated_2"), ("staff", "staff_escalated")]
    assert d.mails[1].to == ("resolution@imolocale.test",)
    # the escalation mail counts as the day's update: no second customer mail
    assert [m.audience for m in d.mails].count("customer") == 1


def test_findings_reminder_before_48h_then_level_3_at_48h():
    c, _ = run(new(), T0 + 24 * H)
    c, d = run(c, T0 + 42 * H)
    assert kinds(d) == [("staff", "staff_findings_reminder")]
    c, d = run(c, T0 + 48 * H - timedelta(minutes=1))
    assert c.level == 2 and d.mails == []
    c, d = run(c, T0 + 48 * H)
    assert c.level == 3
    assert kinds(d) == [("customer", "escalated_3"), ("staff", "staff_escalated")]
    assert d.mails[1].to == ("cx@imolocale.test",)


def test_three_days_down_means_one_escalation_to_level_3_and_one_customer_mail():
    c, d = run(new(), T0 + 72 * H)
    assert c.level == 3
    assert [m.audience for m in d.mails].count("customer") == 1
    assert [e.kind for e in d.events if e.kind == "escalated"] == ["escalated"]
    assert d.events[0].detail["level"] == 3


def test_sweeping_twice_at_the_same_moment_changes_nothing_the_second_time():
    c, d1 = run(new(), T0 + 24 * H)
    c2, d2 = run(c, T0 + 24 * H)
    assert d1.mails and d2.mails == [] and d2.changes == {} and c2 == c


def test_update_cadence_over_five_days_and_target_reports():
    c = new()
    customer_mails, reports = [], []
    now = T0
    while True:
        due = policy.next_due(c, CFG)
        assert due is not None
        if due > T0 + timedelta(days=5, hours=1):
            break
        now = max(now, due)
        c, d = run(c, now)
        customer_mails += [(now - T0, m.template) for m in d.mails if m.audience == "customer"]
        reports += [(now - T0, m.context["missed"]) for m in d.mails if m.template == "staff_target"]
    assert [t for t, _ in customer_mails] == [timedelta(hours=h) for h in (24, 48, 72, 96, 120)]
    assert [tpl for _, tpl in customer_mails] == ["escalated_2", "escalated_3", "update", "update", "update"]
    assert reports == [(timedelta(days=4), False), (timedelta(days=5), True)]


def test_a_staff_answer_resets_the_update_clock():
    c = new(level=3, last_customer_update_at=T0 + 60 * H, target_warned_at=None)
    _, d = run(c, T0 + 80 * H)
    assert [m for m in d.mails if m.template == "update"] == []
    _, d = run(c, T0 + 84 * H)
    assert [m.template for m in d.mails if m.audience == "customer"] == ["update"]


def test_resolved_within_the_first_hour_never_escalates():
    c = new()
    d = policy.resolve(c, T0 + 30 * timedelta(minutes=1), CFG, "Remboursé.", "cs@imolocale.test")
    c = policy.apply(c, d.changes)
    assert kinds(d) == [("customer", "resolution")]
    for hours in (24, 48, 120):
        c, d = run(c, T0 + hours * H)
        assert all(m.template.startswith("satisfaction") for m in d.mails)
        assert c.level == 1


def test_no_satisfaction_answer_one_reminder_then_closed():
    c = new()
    c = policy.apply(c, policy.resolve(c, T0, CFG, "", "x").changes)
    assert policy.next_due(c, CFG) == T0 + timedelta(days=3)
    c, d = run(c, T0 + timedelta(days=3))
    assert kinds(d) == [("customer", "satisfaction_reminder")]
    c, d = run(c, T0 + timedelta(days=5))
    assert d.mails == []
    c, d = run(c, T0 + timedelta(days=6))
    assert c.status == "closed" and d.mails == []
    assert policy.next_due(c, CFG) is None


def test_satisfied_answer_closes_and_thanks():
    c = new()
    c = policy.apply(c, policy.resolve(c, T0, CFG, "", "x").changes)
    d = policy.customer_message(c, T0 + H, CFG, "5/5 merci beaucoup")
    c = policy.apply(c, d.changes)
    assert c.status == "closed" and c.rating == 5
    assert kinds(d) == [("customer", "thanks_rating")]


def test_dissatisfied_answer_reopens_one_level_up_and_notifies_that_team():
    c = new(level=2)
    c = policy.apply(c, policy.resolve(c, T0, CFG, "", "x").changes)
    d = policy.customer_message(c, T0 + H, CFG, "Pas satisfait du tout, toujours pas remboursé.")
    c = policy.apply(c, d.changes)
    assert c.status == "open" and c.level == 3 and c.rating == 1
    assert kinds(d) == [("customer", "thanks_rating"), ("staff", "staff_dissatisfied")]
    assert d.mails[1].to == ("cx@imolocale.test",)


def test_dissatisfied_at_level_3_stays_at_3():
    c = new(level=3)
    c = policy.apply(c, policy.resolve(c, T0, CFG, "", "x").changes)
    c = policy.apply(c, policy.customer_message(c, T0 + H, CFG, "1").changes)
    assert c.level == 3 and c.status == "open"


def test_a_message_that_is_not_a_rating_reopens_as_a_normal_reply():
    c = new()
    c = policy.apply(c, policy.resolve(c, T0, CFG, "", "x").changes)
    d = policy.customer_message(c, T0 + H, CFG, "J'ai reçu le colis mais il manque 2 articles dans la boîte.")
    c = policy.apply(c, d.changes)
    assert c.status == "open" and c.rating is None and c.level == 1
    assert kinds(d) == [("staff", "staff_reply")]


@pytest.mark.parametrize("text,expected", [
    ("5", (5, True)), ("4/5", (4, True)), ("3 sur 5", (3, True)), ("2", (2, False)),
    ("1/5 nul", (1, False)), ("note : 4", (4, True)), ("5 étoiles !", (5, True)),
    ("satisfait", (None, True)), ("Très satisfaite, merci !", (None, True)),
    ("pas satisfait", (None, False)), ("Pas du tout satisfait", (None, False)),
    ("not satisfied", (None, False)), ("Not at all happy", (None, False)),
    ("non", (None, False)), ("No.", (None, False)), ("insatisfait", (None, False)),
    ("Satisfied, thanks", (None, True)), ("yes", (None, True)),
    ("2 articles manquent encore dans ma commande", (None, None)),
    ("Merci, mais le colis est toujours bloqué ?", (None, None)),
    ("", (None, None)),
])
def test_reading_satisfaction_answers(text, expected):
    assert policy.parse_rating(text) == expected


def test_next_due_is_the_first_escalation_for_a_new_complaint():
    assert policy.next_due(new(), CFG) == T0 + 24 * H


from hypothesis import given, settings, strategies as st


@settings(max_examples=300, deadline=None)
@given(
    esc2=st.integers(1, 60), esc3_extra=st.integers(1, 60), findings=st.integers(1, 120),
    reminder=st.integers(0, 30), target_days=st.integers(1, 8), warning=st.integers(0, 48),
    update=st.integers(1, 72), steps=st.lists(st.integers(0, 40 * 60), min_size=1, max_size=25),
)
def test_after_a_sweep_nothing_is_left_due_for_any_settings(esc2, esc3_extra, findings, reminder, target_days,
                                                            warning, update, steps):
    """Whatever the settings, a sweep leaves the complaint's next due moment in the
    future: the sweep never spins on a complaint it cannot act on."""
    cfg = make_config(policy={
        "escalate_to_resolution_hours": esc2, "escalate_to_experience_hours": esc2 + esc3_extra,
        "findings_due_hours": findings, "findings_reminder_hours_before": reminder,
        "resolution_target_days": target_days, "target_warning_hours": warning, "update_every_hours": update})
    c, now = new(), T0
    for minutes in steps:
        now += timedelta(minutes=minutes)
        d = policy.sweep(c, now, cfg)
        c = policy.apply(c, d.changes)
        due = policy.next_due(c, cfg, after=now)
        assert due is None or due > now
        again = policy.sweep(c, now, cfg)
        assert again.mails == [] and again.changes == {}


def test_first_staff_answer_is_kept_when_staff_answer_again():
    c = new()
    c = policy.apply(c, policy.staff_answer(c, T0 + H, CFG, "Bonjour", "cs@imolocale.test").changes)
    c = policy.apply(c, policy.staff_answer(c, T0 + 5 * H, CFG, "Encore", "cs@imolocale.test").changes)
    assert c.first_staff_answer_at == T0 + H and c.last_customer_update_at == T0 + 5 * H


# --- typed changes, assignment, unreachable customers ---------------------------------

def test_changes_are_typed_fields_and_read_like_the_fields_that_were_set():
    d = policy.resolve(new(), T0, CFG, "", "x")
    assert d.changes["status"] == "resolved" and d.changes["rating"] is None  # None: cleared, not unset
    assert "closed_at" not in d.changes and "level" not in d.changes
    with pytest.raises(KeyError):
        d.changes["stauts"] = "open"  # a misspelt field fails in the core
    with pytest.raises(KeyError):
        d.changes.update(next_due=T0)  # the workflow's own column, never the policy's


def test_assign_makes_an_owner_who_then_gets_the_news():
    d = policy.assign(new(), "marc@imolocale.test")
    c = policy.apply(new(), d.changes)
    assert c.owner == "marc@imolocale.test" and policy.handlers(c, CFG) == ("marc@imolocale.test",)
    assert [(e.kind, e.detail) for e in d.events] == [("assigned", {"owner": "marc@imolocale.test"})]


def test_an_unreachable_customer_gets_no_ack_and_staff_are_told_why():
    d = policy.open_complaint(new(last_customer_update_at=None), T0, CFG, unreachable="no such domain")
    assert kinds(d) == [("staff", "staff_new")]
    assert d.mails[0].context["unreachable"] == "no such domain"
    assert "acked_at" not in d.changes and d.events[-1].kind == "unreachable_address"
    d = policy.open_complaint(new(last_customer_update_at=None), T0, CFG)
    assert kinds(d) == [("customer", "ack"), ("staff", "staff_new")] and "unreachable" not in d.mails[1].context


def test_assign_tells_the_new_owner_with_the_complaints_files_unless_she_took_it():
    d = policy.assign(new(), "marc@imolocale.test", "julie@imolocale.test")
    [m] = d.mails
    assert (m.template, m.to, m.audience, m.carry) == ("staff_assigned", ("marc@imolocale.test",), "staff", "complaint")
    assert m.context["by"] == "julie@imolocale.test"
    assert policy.assign(new(), "marc@imolocale.test", "Marc@imolocale.test").mails == []
