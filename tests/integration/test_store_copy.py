"""`maildesk store copy --to postgresql://...` on a real SQLite file and a real PostgreSQL server:
the copy shows the same complaints, carries on after Ctrl-C or kill -9, checks itself, and refuses
what it must with one line."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from datetime import timedelta

import psycopg
import pytest

from maildesk.cli.main import main
from maildesk.lock import InstanceLock
from maildesk.store.db import Store, iso
from maildesk.store.migrations import steps
from maildesk.store.postgres import PgStore
from tests.integration.conftest import PG_PASSWORD_ENV
from tests.integration.test_attachments_flow import PHOTO, with_files
from tests.integration.test_sellers import (
    CS, SELLERS_CSV, T0, H, cli_at, once_at, staff_says,
)
from tests.support import ROOT, config_dict, mail, write_config

pytestmark = pytest.mark.pg_always  # the source is the SQLite file; the target a PostgreSQL of its own


def pg_config(folder, db, **overrides):
    """A config naming the PostgreSQL database (for `show`), its password in PG_PASSWORD_ENV."""
    os.environ[PG_PASSWORD_ENV] = db.password
    data = config_dict(**overrides)
    data["storage"] = {"url": db.url, "password_env": PG_PASSWORD_ENV}
    return write_config(folder / "pg.toml", data)


def run(config, *args) -> tuple[int, str, str]:
    """The real CLI in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--config", str(config), *args])
        except SystemExit as e:  # a usage error: argparse exits
            code = e.code
    assert "a bug in maildesk" not in err.getvalue()  # every refusal here is a known one, told as such
    return code, out.getvalue(), err.getvalue()


def copy(config, db, *extra) -> tuple[int, str, str]:
    os.environ[PG_PASSWORD_ENV] = db.password
    return run(config, "store", "copy", "--to", db.url, "--password-env", PG_PASSWORD_ENV, *extra)


def copy_process(config, db, at: int, signal_name: str) -> subprocess.Popen:
    """`store copy` sent `signal_name` by itself after its `at`-th committed batch (testing/faults.py)."""
    return subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(config), "store", "copy", "--to",
                             db.url, "--password-env", PG_PASSWORD_ENV], cwd=str(ROOT), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "MAILDESK_KILL_AT": str(at), "MAILDESK_KILL_SIGNAL": signal_name},
                            preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """A run started in the background (`cmd &`, as CI may start the suite) ignores SIGINT, and so
    would the copy: give it the terminal's default, so Python turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_stopped(proc: subprocess.Popen, deadline_s: float = 120.0) -> None:
    """Poll (bounded) until the process has stopped itself (state T in /proc)."""
    deadline = time.monotonic() + deadline_s
    while Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] != "T":
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the copy did not reach its stop within {deadline_s} s"
        time.sleep(0.01)


def shown_json(config, ref) -> dict:
    code, out, err = run(config, "show", ref, "--json")
    assert code == 0, err
    return json.loads(out)


def count(db, table) -> int:
    with psycopg.connect(db.url, password=db.password) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def worked(desk):
    """Through the real workflow: sellers imported, a complaint with a photo linked to a seller, a staff
    note and an answer; a second one resolved."""
    path = desk.dir / "sellers.csv"
    path.write_text(SELLERS_CSV, encoding="utf-8")
    assert cli_at(desk, T0 - 24 * H, "seller", "import", str(path), "--by", "ops")[0] == 0
    desk.deliver(with_files(mail(body="Le vase est arrivé cassé, photo jointe. Reçu hier."),
                            ("casse.jpg", "image/jpeg", PHOTO)), msg_time=T0)
    desk.deliver(mail(sender="paul@example.fr", name="Paul Lefèvre", subject="Remboursement"), msg_time=T0)
    once_at(desk, T0 + timedelta(minutes=1))
    first = desk.rows("SELECT ref FROM complaints WHERE customer_addr = 'camille@example.fr'")[0]["ref"]
    second = desk.rows("SELECT ref FROM complaints WHERE customer_addr = 'paul@example.fr'")[0]["ref"]
    note = next(m for m in desk.sent() if CS in str(m["To"]) and first in str(m["Subject"]))
    staff_says(desk, note, "#seller S-1042\nLe vase de la commande 784512 est arrivé cassé.", T0 + H)
    staff_says(desk, note, "#note\nLa boutique rappelle demain", T0 + 2 * H)
    staff_says(desk, note, "Bonjour, la boutique vous renvoie un vase.", T0 + 3 * H)
    assert cli_at(desk, T0 + 4 * H, "resolve", second, "--note", "Remboursé.")[0] == 0
    return desk, [first, second]


def test_a_copy_shows_the_same_complaints_and_a_second_run_only_checks(worked, pg_url, tmp_path):
    desk, refs = worked
    code, out, err = copy(desk.config, pg_url)
    assert code == 0, err
    assert "complaints" in out and "DIFFERS" not in out and pg_url.password not in out + err
    pg = pg_config(tmp_path, pg_url, mailbox={"port": desk.dovecot.port}, smtp={"port": desk.sink.port})
    for ref in refs:
        on_sqlite = shown_json(desk.config, ref)
        assert shown_json(pg, ref) == on_sqlite
    assert "casse.jpg" in json.dumps(shown_json(pg, refs[0]))  # the photo's file came along
    assert count(pg_url, "outreach") == 1 and count(pg_url, "files") == 1 and count(pg_url, "seller_events") > 0
    # the search index was rebuilt by the triggers: the note, the customer's words, the seller's name
    for words in ("rappelle", "recu hier", "Lumiere"):
        code, out, err = run(pg, "search", words, "--json")
        assert code == 0 and [hit["ref"] for hit in json.loads(out)] == [refs[0]], (words, out, err)
    code, out, _ = copy(desk.config, pg_url)  # again: nothing left to copy, all checked
    assert code == 0 and "0 rows copied (resumed)" in out
    # new rows on PostgreSQL get fresh ids (identities advanced past the copied ones)
    last_event = desk.rows("SELECT max(id) AS m FROM events")[0]["m"]
    with psycopg.connect(pg_url.url, password=pg_url.password) as conn:
        new = conn.execute("INSERT INTO events (at, actor, kind) VALUES ('2026-12-01T00:00:00+00:00', 'x', 'y') "
                           "RETURNING id").fetchone()[0]
    assert new == last_event + 1


def test_a_row_changed_on_the_target_fails_the_check_naming_its_table(worked, pg_url):
    desk, refs = worked
    assert copy(desk.config, pg_url)[0] == 0
    with psycopg.connect(pg_url.url, password=pg_url.password) as conn:
        conn.execute("UPDATE complaints SET subject = subject || '!' WHERE ref = %s", (refs[1],))
    code, out, err = copy(desk.config, pg_url)
    assert code == 1 and "complaints" in err and "DIFFERS" in out
    assert [line.split()[0] for line in out.splitlines() if "DIFFERS" in line] == ["complaints"]


def build(path, total: int) -> list[str]:
    """`total` complaints in bulk, three of every four linked to a seller, each with its customer's mail,
    an acknowledgement sent, its events (every tenth with a staff note); the references."""
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    refs = [f"B{i:07d}" for i in range(total)]
    at = [iso(T0 - timedelta(minutes=i)) for i in range(total)]
    with conn:  # sellers and files (keyed by text) first, as the copy takes them
        conn.executemany("INSERT INTO sellers (id, shop_name, address, created_at, updated_at) VALUES (?,?,?,?,?)",
                         ((f"S-{n}", f"Boutique {n}", f"shop{n}@example.fr", at[0], at[0]) for n in range(3)))
        conn.executemany("INSERT INTO files (sha256, size, content) VALUES (?,?,?)",
                         ((f"{n:064x}", 3, b"\x00\x01\xff") for n in range(3)))
        conn.executemany("INSERT INTO complaints (id, ref, customer_addr, customer_name, subject, first_contact, "
                         "opened_at, acked_at, seller_id) VALUES (?,?,?,?,?,?,?,?,?)",
                         ((i + 1, refs[i], f"client{i}@example.fr", f"Client {i} Lefèvre", "Colis jamais reçu",
                           at[i], at[i], at[i], f"S-{i % 4}" if i % 4 < 3 else None) for i in range(total)))
        conn.executemany("INSERT INTO messages (complaint_id, message_id, direction, kind, at, from_addr, subject, "
                         "body, raw) VALUES (?,?,'in','customer',?,?,?,?,?)",
                         ((i + 1, f"<c{i}@example.fr>", at[i], f"client{i}@example.fr", "Colis jamais reçu",
                           f"Bonjour, ma commande {100000 + i} n'est jamais arrivée.", b"\x00raw\xff" * (i % 7))
                          for i in range(total)))
        conn.executemany("INSERT INTO outbox (message_id, complaint_id, kind, audience, mail_from, rcpt, subject, "
                         "raw, status, next_attempt_at, created_at, sent_at) "
                         "VALUES (?,?,'ack','customer','support@imolocale.test',?,?,?,'sent',?,?,?)",
                         ((f"<a{i}@imolocale.test>", i + 1, json.dumps([f"client{i}@example.fr"]), f"[{refs[i]}] Reçu",
                           b"Subject: ack\r\n\r\nbody", at[i], at[i], at[i]) for i in range(total)))
        conn.executemany("INSERT INTO events (complaint_id, at, actor, kind, detail) VALUES (?,?,?,?,?)",
                         ((i // 2 + 1, at[i // 2], "cs@imolocale.test" if i % 20 == 1 else "maildesk",
                           "note" if i % 20 == 1 else "received",
                           json.dumps({"text": f"Relancé le vendeur {i}"} if i % 20 == 1 else {"n": i}))
                          for i in range(2 * total)))
    conn.close()
    return refs


def test_ten_thousand_complaints_ctrl_c_kill_9_server_killed_then_done_and_the_same(pg_url, tmp_path):
    config = write_config(tmp_path / "maildesk.toml", config_dict())
    refs = build(tmp_path / "maildesk.db", 10_000)
    os.environ[PG_PASSWORD_ENV] = pg_url.password
    # each run interrupted after its 3rd committed batch (MAILDESK_KILL_AT counts them; 5,000 rows a batch)
    first = copy_process(config, pg_url, at=3, signal_name="SIGINT")  # an admin's Ctrl-C
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "run the same command again" in err, err
    assert count(pg_url, "sellers") == 3 and count(pg_url, "complaints") == 5_000  # it stopped half-way
    second = copy_process(config, pg_url, at=3, signal_name="SIGKILL")  # a power cut
    second.wait(timeout=120)
    assert second.returncode == -signal.SIGKILL and count(pg_url, "events") < 20_000
    third = copy_process(config, pg_url, at=3, signal_name="SIGSTOP")  # held while PostgreSQL dies
    wait_stopped(third)
    pg_url.server.kill()
    third.send_signal(signal.SIGCONT)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 1 and "run the same command again" in err and len(err.splitlines()) == 1, err
    pg_url.server.start()
    t0 = time.perf_counter()
    code, out, err = copy(config, pg_url)
    seconds = time.perf_counter() - t0
    assert code == 0, err
    assert "(resumed)" in out and "DIFFERS" not in out
    assert {t: count(pg_url, t) for t in ("complaints", "messages", "outbox", "events")} == {
        "complaints": 10_000, "messages": 10_000, "outbox": 10_000, "events": 20_000}
    pg = pg_config(tmp_path, pg_url)
    for ref in refs[::997]:
        assert shown_json(pg, ref) == shown_json(config, ref)
    print(f"\nresumed copy of 10,000 complaints: {seconds:.2f} s")


def test_refusals_each_in_one_line(pg_url, postgres, tmp_path):
    config = write_config(tmp_path / "maildesk.toml", config_dict())
    build(tmp_path / "maildesk.db", 3)
    os.environ[PG_PASSWORD_ENV] = pg_url.password
    lock = InstanceLock(tmp_path / "maildesk.db")  # a daemon runs on the SQLite file
    lock.acquire()
    try:
        code, _, err = copy(config, pg_url)
    finally:
        lock.release()
    assert code == 1 and "already running" in err and "stop it before" in err and len(err.splitlines()) == 1
    assert not _has_schema(pg_url)  # refused before touching PostgreSQL
    # PostgreSQL not listening there
    code, _, err = run(config, "store", "copy", "--to", f"postgresql://maildesk@127.0.0.1:1/{pg_url.name}",
                       "--password-env", PG_PASSWORD_ENV)
    assert code == 2 and "cannot connect to PostgreSQL" in err and len(err.splitlines()) == 1
    assert pg_url.password not in err
    # a wrong password: the server's words, never the password
    os.environ["WRONG_PG_PASSWORD"] = "not-the-password-42"
    code, _, err = run(config, "store", "copy", "--to", pg_url.url, "--password-env", "WRONG_PG_PASSWORD")
    assert code == 2 and "password" in err and "not-the-password-42" not in err
    code, _, err = run(config, "store", "copy", "--to", "mysql://maildesk@127.0.0.1/x")
    assert code == 2 and "--to must look like postgresql://" in err
    code, _, err = run(config, "store", "copy")
    assert code == 2 and "--to" in err and len(err.splitlines()) == 1
    # a password written into the URL is refused, not used
    code, _, err = run(config, "store", "copy", "--to", pg_url.url.replace("maildesk@", f"maildesk:{pg_url.password}@"))
    assert code == 2 and pg_url.password not in err
    # another database's copy is there
    assert copy(config, pg_url)[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    other_config = write_config(other / "maildesk.toml", config_dict())
    build(other / "maildesk.db", 1)
    with sqlite3.connect(other / "maildesk.db") as conn:
        conn.execute("UPDATE complaints SET ref = 'OTHER01'")
    code, _, err = copy(other_config, pg_url)
    assert code == 1 and "holds a copy of another database" in err and len(err.splitlines()) == 1
    # a PostgreSQL database holding rows of its own
    fresh = postgres.database()
    try:
        pg = PgStore(fresh.url, fresh.password)
        with pg.transaction():
            pg.set_state("first_start", "done")
        pg.close()
        code, _, err = run(config, "store", "copy", "--to", fresh.url, "--password-file", _secret(tmp_path, fresh))
        assert code == 1 and "is not empty (rows in state)" in err
    finally:
        postgres.drop_database(fresh.name)
    # an SQLite database at an older schema
    old = tmp_path / "old"
    old.mkdir()
    old_config = write_config(old / "maildesk.toml", config_dict())
    conn = sqlite3.connect(old / "maildesk.db", isolation_level=None)
    conn.create_function("mailbox_key", 1, lambda a: a)
    conn.create_function("sha256", 1, lambda a: a)
    for number, statements in steps(0)[:13]:
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
    conn.close()
    code, _, err = copy(old_config, pg_url)
    assert code == 2 and "run `maildesk migrate`" in err and len(err.splitlines()) == 1


def _has_schema(db) -> bool:
    with psycopg.connect(db.url, password=db.password) as conn:
        return conn.execute("SELECT to_regclass('complaints') IS NOT NULL").fetchone()[0]


def _secret(folder, db) -> str:
    path = folder / "pg-password"
    path.write_text(db.password + "\n")
    return str(path)
