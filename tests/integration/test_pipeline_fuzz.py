"""Bad input at scale through the whole pipeline (parse -> classify -> thread -> policy ->
store -> outbox), on a temporary SQLite store with no network: Workflow + Store + Templates.

- mutated real-world mail never makes an exception escape `Workflow.receive`, and every
  message ends processed (or known as a duplicate) or quarantined;
- nothing a customer writes (name, subject, Message-ID) adds a header to our outgoing mail;
- a flood from one address gets a bounded number of automatic replies and one admin alert;
- an auto-responder answering our acknowledgement gets nothing back (no loop).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, message_from_string, policy as email_policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildesk.store.db import Store
from maildesk.outbound.templates import Templates
from maildesk.service.workflow import Workflow
from tests.support import make_config, mail, own_corpus
from tests.unit.test_mail_fuzz import SEEDS, mutate, mutation


T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)

# Every header our outgoing mail may carry (outgoing.compose); anything else is an injection.
OUR_HEADERS = {"from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references", "reply-to",
               "auto-submitted", "x-auto-response-suppress", "x-maildesk-reference", "mime-version",
               "content-type", "content-transfer-encoding"}
PART_HEADERS = {"content-disposition", "content-id"}  # the files a notification carries (issue 16)


class Pipeline:
    def __init__(self, base_dir, **sections):
        self.cfg = make_config(base_dir=base_dir, **sections)
        self.store = Store(self.cfg.database_path)
        self.workflow = Workflow(self.cfg, self.store, Templates(None, "fr", self.cfg.tz))

    def receive(self, raw: bytes, now: datetime):
        """As the daemon does: a savepoint per message inside the batch's transaction."""
        with self.store.transaction():
            with self.store.transaction():
                return self.workflow.receive(raw, now, now)

    def outbox(self, after_id: int = 0) -> list:
        return self.store.all("SELECT * FROM outbox WHERE id > ? ORDER BY id", after_id)

    def last_outbox_id(self) -> int:
        return self.store.scalar("SELECT coalesce(max(id), 0) FROM outbox")

    def close(self):
        self.store.close()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    p = Pipeline(tmp_path_factory.mktemp("pipeline"))
    yield p
    p.close()


@pytest.fixture
def fresh(tmp_path):
    p = Pipeline(tmp_path)
    yield p
    p.close()


def check_outgoing(row) -> None:
    """One outgoing mail: only our headers, each once, recipients as queued."""
    raw = row["raw"]
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].strip().lower().decode() for line in head.splitlines()
             if line and not line[:1].isspace()]
    assert set(names) <= OUR_HEADERS, f"unexpected header(s): {set(names) - OUR_HEADERS}"
    top = [n for n in names if n not in ("content-type", "content-transfer-encoding", "mime-version")]
    assert len(top) == len(set(top)), f"repeated header: {names}"
    # to an internationalized address our headers are UTF-8 (SMTPUTF8): read them as such
    msg = message_from_string(raw.decode("utf-8"), policy=email_policy.default)
    assert not msg.defects
    rcpt = json.loads(row["rcpt"])
    cc = [a.addr_spec for a in msg["Cc"].addresses] if msg["Cc"] else []  # the customer's Cc (issue 16)
    assert sorted([*(a.addr_spec for a in msg["To"].addresses), *cc]) == sorted(rcpt)
    for part in msg.walk():  # no header smuggled into a MIME part either
        assert {k.lower() for k in part.keys()} <= (OUR_HEADERS | PART_HEADERS if part is not msg else OUR_HEADERS)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), ops=st.lists(mutation, min_size=1, max_size=6),
       minutes=st.integers(0, 60 * 24 * 10))
def test_mutated_mail_through_the_whole_pipeline(pipeline, seed, ops, minutes):
    raw = mutate(seed, ops)
    before = pipeline.last_outbox_id()
    outcome = pipeline.receive(raw, T0 + timedelta(minutes=minutes))  # nothing may escape
    assert outcome.action in ("processed", "duplicate", "quarantine")
    if outcome.action == "quarantine":
        assert outcome.reason
    else:
        assert pipeline.store.seen(outcome.message_id)
    for row in pipeline.outbox(before):
        check_outgoing(row)




@pytest.mark.parametrize("path", own_corpus(), ids=lambda p: p.name)
def test_every_own_sample_through_the_whole_pipeline(fresh, path):
    """Each of our sample mails as it is (the fuzz above mutates them at random): handled, and
    every mail it makes us send well-formed, internationalized addresses included."""
    outcome = fresh.receive(path.read_bytes(), T0)
    assert outcome.action in ("processed", "duplicate", "quarantine")
    for row in fresh.outbox():
        check_outgoing(row)

INJECTIONS = [
    "Bonjour\r\nBcc: victim@example.com",
    "Bonjour\nBcc: victim@example.com",
    "Bonjour\rBcc: victim@example.com",
    "=?utf-8?q?Bonjour=0D=0ABcc=3A_victim=40example=2Ecom?=",
    "=?utf-8?b?Qm9uam91cg0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=",
    "Bonjour\x00Bcc: victim@example.com",
    "Bonjour\u2028Bcc: victim@example.com\u0085X-Evil: 1",
]


def with_header(raw: bytes, name: str, value: str) -> bytes:
    """Replace a header with a raw value (bytes as written, CR/LF included)."""
    head, _, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(name.lower().encode() + b":")]
    lines.insert(0, f"{name}: {value}".encode("utf-8", "surrogateescape"))
    return b"\n".join(lines) + b"\n\n" + body


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_injection_through_subject_or_name_never_reaches_our_mail(fresh, value):
    base = mail(sender="eve@example.com", name="Eve", subject="placeholder",
                body="Hello, my parcel never arrived.")
    sent = []
    tag = abs(hash(value))
    variants = [
        with_header(base, "Subject", value),
        with_header(base, "From", f"{value} <eve@example.com>"),
        with_header(base, "From", f'"{value}" <eve@example.com>'),
        with_header(base, "Subject", f"Re: {value}"),
    ]
    for i, raw in enumerate(variants):
        raw = with_header(raw, "Message-ID", f"<inject{i}-{tag}@example.com>")
        if i == 3:  # a reply whose threading headers carry the injection
            raw = with_header(raw, "In-Reply-To", f"<id@x> {value}")
            raw = with_header(raw, "References", f"<id@x> {value} <other@x>")
        before = fresh.last_outbox_id()
        outcome = fresh.receive(raw, T0 + timedelta(minutes=i))
        assert outcome.action in ("processed", "quarantine")
        sent += fresh.outbox(before)
    assert sent, "nothing was answered at all"
    for row in sent:
        check_outgoing(row)
        head = row["raw"].split(b"\n\n", 1)[0].lower()  # the body may quote the text; headers may not
        assert b"\nbcc:" not in head and b"\nx-evil" not in head
        assert json.loads(row["rcpt"]) in (["eve@example.com"], ["cs@imolocale.test"])


def test_a_flood_from_one_address_is_capped_and_reported_once(fresh):
    cap = fresh.cfg.policy.max_auto_replies_per_hour
    for i in range(200):  # 200 messages in 50 minutes
        raw = mail(sender="flood@example.com", name="Flood", subject=f"Message {i}",
                   message_id=f"<flood{i}@example.com>")
        assert fresh.receive(raw, T0 + timedelta(seconds=15 * i)).action == "processed"
    rows = fresh.outbox()
    acks = [r for r in rows if r["kind"] == "ack"]
    alerts = [r for r in rows if r["kind"] == "alert"]
    assert len(acks) == cap
    assert len(alerts) == 1 and json.loads(alerts[0]["rcpt"]) == list(fresh.cfg.teams.admins)
    alert = message_from_bytes(alerts[0]["raw"], policy=email_policy.default)
    assert "flood@example.com" in str(alert["Subject"])
    assert "flood@example.com" in alert.get_body(("plain",)).get_content()
    assert fresh.store.scalar("SELECT count(*) FROM complaints") == 200  # every message kept
    for row in rows:
        check_outgoing(row)
    # an hour after the flood stopped, the address gets an acknowledgement again; a new flood
    # in a later hour is reported again, once
    later = T0 + timedelta(hours=2)
    for i in range(cap + 3):
        fresh.receive(mail(sender="flood@example.com", message_id=f"<later{i}@example.com>"),
                      later + timedelta(minutes=i))
    rows = fresh.outbox()
    assert len([r for r in rows if r["kind"] == "ack"]) == 2 * cap
    assert len([r for r in rows if r["kind"] == "alert"]) == 2


def test_an_auto_responder_never_loops_with_us(fresh):
    """A customer's out-of-office answers everything we send; we answer none of it."""
    first = mail(sender="away@example.com", name="Away", message_id="<away0@example.com>")
    fresh.receive(first, T0)
    to_robot = [r for r in fresh.outbox() if json.loads(r["rcpt"]) == ["away@example.com"]]
    assert len(to_robot) == 1
    for i in range(1, 50):
        last = to_robot[-1]
        ours = message_from_bytes(last["raw"], policy=email_policy.default)
        reply = mail(sender="away@example.com", name="Away", subject=f"Absence : {ours['Subject']}",
                     body="Je suis absente jusqu'au 1er décembre.", message_id=f"<away{i}@example.com>",
                     in_reply_to=str(ours["Message-ID"]), headers={"Auto-Submitted": "auto-replied"})
        assert fresh.receive(reply, T0 + timedelta(minutes=i)).action == "processed"
        to_robot = [r for r in fresh.outbox() if json.loads(r["rcpt"]) == ["away@example.com"]]
    assert len(to_robot) == 1  # only the acknowledgement of the real complaint
    assert fresh.store.scalar("SELECT count(*) FROM complaints") == 1
    recorded = fresh.store.scalar("SELECT count(*) FROM messages WHERE kind = 'auto'")
    assert recorded == 49


def test_a_robot_that_hides_what_it_is_gets_a_bounded_number_of_replies(fresh):
    """A robot without Auto-Submitted that strips our headers and writes anew each time we
    write: every message opens a complaint, but acknowledgements stop at the hourly cap."""
    cap = fresh.cfg.policy.max_auto_replies_per_hour
    now, sent_to_robot, seen = T0, 0, 0
    for i in range(300):
        rows = [r for r in fresh.outbox() if json.loads(r["rcpt"]) == ["bot@example.net"]]
        if i and len(rows) == seen:
            now += timedelta(minutes=10)  # we said nothing: the robot writes again later anyway
        seen = len(rows)
        fresh.receive(mail(sender="bot@example.net", name="Bot", subject=f"Ticket {i}",
                           message_id=f"<bot{i}@example.net>"), now)
        now += timedelta(seconds=5)
    sent_to_robot = len([r for r in fresh.outbox() if json.loads(r["rcpt"]) == ["bot@example.net"]])
    hours = (now - T0).total_seconds() / 3600
    assert sent_to_robot <= cap * (int(hours) + 2)
    assert len([r for r in fresh.outbox() if r["kind"] == "alert"]) <= int(hours) + 2


def test_alerts_and_flood_notices_are_coalesced_and_every_one_is_counted(tmp_path):
    """Issue 12, finding 11: 10 forgeries were 10 alerts; a flood across +tags was a notification
    per complaint. Now: the first at once, the rest of the hour in one mail with its count."""
    p = Pipeline(tmp_path, security={"require_authenticated_staff": True})
    try:
        for i in range(10):
            p.receive(mail(sender="cs@imolocale.test", name="CS", subject=f"#resolve {i}",
                           message_id=f"<forged{i}@evil.test>"), T0 + timedelta(minutes=i))
        for i in range(20):
            p.receive(mail(sender=f"attacker+{i}@evil.test", name="A", subject=f"Colis {i}",
                           message_id=f"<flood{i}@evil.test>"), T0 + timedelta(minutes=i))
        kinds = [r["kind"] for r in p.outbox()]
        assert kinds.count("alert") == 2  # one forgery alert, one flood alert
        assert kinds.count("ack") == p.cfg.policy.max_auto_replies_per_hour
        assert kinds.count("notify") == p.cfg.policy.max_auto_replies_per_hour + 1  # + one flood notice
        assert kinds.count("refused") == 1  # the colleague whose address was forged, told once (issue 14)
        before = p.last_outbox_id()
        assert p.workflow.notices.flush(T0 + timedelta(minutes=50)) == 0  # the hour is not over
        with p.store.transaction():
            assert p.workflow.notices.flush(T0 + timedelta(minutes=70)) == 3
        texts = [message_from_bytes(r["raw"], policy=email_policy.default) for r in p.outbox(before)]
        forged = next(m for m in texts if "cs@imolocale.test" in str(m["Subject"]))
        refused = next(m for m in texts if "Message refusé" in str(m["Subject"]))
        assert "9 messages refusés depuis" in refused.get_body(("plain",)).get_content()
        text = forged.get_body(("plain",)).get_content()
        assert "(et 8 autre(s))" in str(forged["Subject"])  # the 9 that waited: the latest, 8 more
        assert "9 messages suspects depuis" in text and text.count("cs@imolocale.test :") == 8
        notice = next(m for m in texts if "attacker" in str(m["Subject"]))
        assert str(notice["Subject"]).startswith("[maildesk] 14 réclamation(s) de attacker+19@evil.test")
        assert len(texts) == 3 and p.store.scalar("SELECT count(*) FROM notices WHERE mailed_at IS NULL") == 0
        assert p.store.scalar("SELECT count(*) FROM notices") == 10 + 10 + 15 + 1  # every occurrence, in one mail
        for row in p.outbox():
            check_outgoing(row)
    finally:
        p.close()
