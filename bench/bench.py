#!/usr/bin/env python3
"""maildesk under load, on this machine, against the same local stack as the tests.

    .venv/bin/python bench/bench.py [--n 1000] [--json out.json] [--only backlog,latency,...]
                                    [--store sqlite|postgresql|both] [--scale 1.0]

Starts a throwaway Dovecot and an aiosmtpd sink on loopback (maildesk.testing: dovecot, smtp_sink) and measures:

  backlog    N new complaints waiting in the inbox, handled by Daemon.once() until every
             acknowledgement is accepted by SMTP (messages/s); then N customer replies to
             those complaints (messages/s until every staff notification is accepted)
  latency    APPEND -> acknowledgement accepted by SMTP with `maildesk run` (IDLE) as a
             subprocess: median and 95th percentile over 50 messages
  sweep      one timer sweep over 100,000 and 1,000,000 open complaints with 1% due
  memory     peak resident memory (VmHWM of a child process) for one 25 MB message (a 24 MB
             photo: above max_message_mb it is read part by part; and with max_message_mb = 30,
             fetched and parsed whole), and after 1,000 vs 10,000 messages (growth)
  search     `maildesk search` over 100,000 complaints: index build, migration, queries
  copy       `maildesk store copy` of 10,000 complaints (with their mail, acknowledgements and events)
             from SQLite into a throwaway PostgreSQL (maildesk.testing.postgres): rows/s, verified
  floor      the bare steps on the same machine: stdlib parse, one SQLite commit per
             message, one SMTP send per message over a reused connection, IMAP FETCH

Prints a table and, with --json, writes every figure to a file. Not part of the test run.
--store postgresql runs the same benchmarks with the store on a throwaway PostgreSQL cluster the
bench starts itself (bench/pg_setup.py); --store both runs each on both, one column each. --scale
multiplies the bulk sizes (sweep, search, privacy, retention) for a quick run.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import pickle
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pg_setup  # noqa: E402  (bench/, beside this script)
from pg_setup import bulk, forget, new_database, open_store, size_mb, storage  # noqa: E402
from maildesk.testing.dovecot import Dovecot  # noqa: E402
from maildesk.testing.smtp_sink import SmtpSink  # noqa: E402

SUPPORT = "support@imolocale.test"
PYTHON = sys.executable
SIZES = {"sweep": (100_000, 1_000_000), "search": 100_000, "privacy": 10_000}
# the sweep over 1,000,000 complaints on PostgreSQL takes minutes (its build, with the search trigger
# per row, and 10,000 due complaints swept): left out unless this is raised
PG_SWEEP_MAX = 100_000
NA = "n/a"

GOALS = {
    "backlog_new_per_s": (">=", 200),
    "latency_median_s": ("<=", 1.0),
    "sweep_{l}_due_query_ms": ("<", 100),
    "sweep_{s}_digest_s": ("<", 1.0),
    "sweep_{l}_digest_s": ("<", 5.0),
    "memory_25mb_mb": ("<", 150),
}

SUBJECTS = ["Colis jamais reçu", "Article endommagé", "Remboursement en attente", "Wrong item delivered",
            "Commande incomplète", "Retour refusé par le vendeur", "Late delivery", "Produit non conforme"]
BODIES = [
    "Bonjour,\n\nJ'ai commandé une lampe le 12 novembre (commande n° {order}) et je n'ai toujours rien reçu.\n"
    "Le suivi indique « livré » mais le colis n'est pas arrivé.\n\nMerci de votre aide,\n{name}",
    "Hello,\n\nI ordered a blue teapot (order number {order}) but the seller sent a red one.\n"
    "I would like a replacement or a refund.\n\nThanks,\n{name}",
    "Bonjour,\n\nLe vendeur m'a promis un remboursement il y a trois semaines et rien depuis.\n"
    "Pouvez-vous intervenir ? Ma commande : {order}.\n\nCordialement,\n{name}",
]


# --- the stack ----------------------------------------------------------------------------------

class ChildSink:
    """The SMTP sink in its own process, so that it does not share maildesk's CPU and GIL.
    Driven over its stdin/stdout, one command a line: count, clear, dump PATH."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc = subprocess.Popen([PYTHON, str(Path(__file__).resolve()), "--serve-sink"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def _ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self) -> int:
        return int(self._ask("count"))

    def clear(self) -> None:
        self._ask("clear")

    def received(self) -> list[tuple[float, bytes]]:
        """(time accepted, raw) for every message so far."""
        path = self.workdir / "sink.pickle"
        self._ask(f"dump {path}")
        with open(path, "rb") as f:
            return pickle.load(f)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def serve_sink() -> None:
    sink = SmtpSink()
    sink.start()
    print(sink.port, flush=True)
    for line in sys.stdin:  # until the parent closes our stdin
        command, _, arg = line.strip().partition(" ")
        if command == "count":
            print(len(sink.messages), flush=True)
        elif command == "clear":
            sink.clear()
            print("ok", flush=True)
        elif command == "dump":
            with open(arg, "wb") as f:
                pickle.dump([(m.received_at, m.data) for m in sink.messages], f)
            print("ok", flush=True)
    sink.stop()


def not_here(out: dict, keys, why: str) -> None:
    """Figures that mean nothing on this store: "n/a", and why in one line under the table."""
    for key in keys:
        out[key] = NA
    out.setdefault("n/a", {}).update(dict.fromkeys(keys, why))


class Stack:
    """Dovecot + sink + a config and database (file or PostgreSQL) in one temporary folder."""

    def __init__(self, **overrides):
        self.dir = Path(tempfile.mkdtemp(prefix="maildesk-bench-"))
        self.dir.chmod(0o755)
        self.dovecot = Dovecot(self.dir / "dovecot")
        self.dovecot.start()
        self.sink = ChildSink(self.dir)
        self.config = self.dir / "maildesk.toml"
        self.db = new_database(self.dir / "maildesk.db")
        self.write_config(**overrides)
        self.dovecot.count("INBOX")  # first login creates the maildir
        self.maildir = self.dovecot.root / "mail" / SUPPORT
        st = self.maildir.stat()
        self.uid, self.gid = st.st_uid, st.st_gid
        self._seq = 0

    def write_config(self, **overrides) -> None:
        sections = {
            "mailbox": {"host": "127.0.0.1", "port": self.dovecot.port, "security": "none",
                        "username": SUPPORT, "password": "secret", "idle": True, "poll_seconds": 1},
            "smtp": {"host": "127.0.0.1", "port": self.sink.port, "security": "none",
                     "from_address": SUPPORT, "from_name": "imolocale"},
            "storage": storage(self.db),
            "teams": {"customer_service": ["cs@imolocale.test"], "resolution": ["resolution@imolocale.test"],
                      "customer_experience": ["cx@imolocale.test"], "admins": ["admin@imolocale.test"]},
            "policy": {"reference_prefix": "IMO", "timezone": "Europe/Paris"},
            "security": {"require_authenticated_staff": False},
            "logging": {"level": "WARNING"},
        }
        for name, values in overrides.items():
            sections.setdefault(name, {}).update(values)
        lines = []
        for name, values in sections.items():
            lines.append(f"[{name}]")
            for k, v in values.items():
                lines.append(f"{k} = {json.dumps(v)}")  # JSON scalars and lists are valid TOML here
            lines.append("")
        self.config.write_text("\n".join(lines))

    def drop(self, raws, folder: str = "") -> None:
        """Put messages straight into the maildir (what an MDA does): much faster than APPEND.
        Dovecot picks them up from new/ at the next SELECT."""
        drop_into(self.maildir, self.uid, self.gid, raws, folder)

    def app(self):
        from maildesk.app import App
        from maildesk.config import load
        return App(load(self.config))

    def close(self) -> None:
        self.sink.stop()
        self.dovecot.stop()
        forget(self.db)
        shutil.rmtree(self.dir, ignore_errors=True)


_seq = 0


def drop_into(maildir: Path, uid: int, gid: int, raws, folder: str = "") -> None:
    global _seq
    target = (maildir / f".{folder}" if folder else maildir) / "new"
    tmp = target.parent / "tmp"
    now = time.time()
    for raw in raws:
        _seq += 1
        name = f"{int(now)}.M{_seq}P{os.getpid()}.bench,S={len(raw)}"
        path = tmp / name
        path.write_bytes(raw)
        os.chown(path, uid, gid)
        os.rename(path, target / name)


def complaint(i: int, *, size_pad: int = 0, subject: str | None = None, in_reply_to: str | None = None,
              sender: str | None = None) -> bytes:
    rnd = random.Random(i)
    name = f"Client {i}"
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender or f'client{i}@example.fr'}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject or SUBJECTS[i % len(SUBJECTS)]
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = f"<bench-{i}-{os.urandom(4).hex()}@example.fr>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    body = rnd.choice(BODIES).format(order=rnd.randint(100000, 999999), name=name)
    msg.set_content(body + ("\n" + "x" * size_pad if size_pad else ""))
    return msg.as_bytes()


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB. VmHWM where there is /proc:
    Linux carries ru_maxrss over exec from the parent, so a child started by a big parent
    would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- 1. backlog -----------------------------------------------------------------------------------

def _to(raw: bytes) -> str:
    return str(message_from_bytes(raw)["To"] or "")


def _drain(app, max_runs: int = 100) -> int:
    """Daemon.once() until nothing is queued: what cron would do. Returns how many runs."""
    from maildesk.daemon import Daemon
    runs = 0
    while runs < max_runs:
        Daemon(app).once()
        runs += 1
        if not app.outbox.depth():
            break
    return runs


def bench_backlog(n: int) -> dict:
    stack = Stack()
    try:
        stack.drop(complaint(i) for i in range(n))
        app = stack.app()
        t0 = time.perf_counter()
        runs = _drain(app)
        elapsed = time.perf_counter() - t0
        sent = stack.sink.received()
        acks = [raw for _, raw in sent if _to(raw).startswith("client")]
        assert len(acks) == n, f"{len(acks)} acknowledgements for {n} complaints"
        assert app.store.scalar("SELECT count(*) FROM complaints") == n
        out = {"backlog_n": n, "backlog_new_s": elapsed, "backlog_new_per_s": n / elapsed,
               "backlog_new_once_runs": runs, "backlog_new_mails_sent": len(sent)}

        refs = [r["ref"] for r in app.store.all("SELECT ref FROM complaints ORDER BY id")]
        stack.sink.clear()
        stack.drop(complaint(i, subject=f"Re: [{ref}] {SUBJECTS[i % len(SUBJECTS)]}")
                   for i, ref in enumerate(refs))
        t0 = time.perf_counter()
        runs = _drain(app)
        elapsed = time.perf_counter() - t0
        notes = [raw for _, raw in stack.sink.received() if _to(raw) == "cs@imolocale.test"]
        assert len(notes) == n, f"{len(notes)} notifications for {n} replies"
        assert app.store.scalar("SELECT count(*) FROM complaints") == n
        out.update(backlog_reply_s=elapsed, backlog_reply_per_s=n / elapsed, backlog_reply_once_runs=runs)
        app.close()
        return out
    finally:
        stack.close()


# --- 2. latency under IDLE -------------------------------------------------------------------------

def bench_latency(count: int = 50) -> dict:
    stack = Stack()
    proc = None
    try:
        log = open(stack.dir / "run.log", "w")
        proc = subprocess.Popen([PYTHON, "-m", "maildesk", "--config", str(stack.config), "run"],
                                cwd=str(ROOT), stdout=log, stderr=log)
        # wait until it is IDLE-ing: one message through first (not counted)
        client = stack.dovecot.client()
        latencies = []
        for i in range(count + 1):
            want = stack.sink.count() + 2  # the acknowledgement and the staff notification
            raw = complaint(100_000 + i)
            t0 = time.time()
            client.append("INBOX", raw)
            deadline = time.monotonic() + (60 if i == 0 else 20)
            while time.monotonic() < deadline:
                if stack.sink.count() >= want or proc.poll() is not None:
                    break
                time.sleep(0.002)
            assert proc.poll() is None, (stack.dir / "run.log").read_text()[-2000:]
            got = [(at, r) for at, r in stack.sink.received() if b"client%d@" % (100_000 + i) in r]
            assert got, f"no acknowledgement for message {i} within the deadline"
            if i:
                latencies.append(got[0][0] - t0)
            time.sleep(0.05)  # the daemon is back in IDLE
        client.logout()
        latencies.sort()
        return {"latency_n": count, "latency_median_s": statistics.median(latencies),
                "latency_p95_s": latencies[int(round(0.95 * (len(latencies) - 1)))],
                "latency_max_s": latencies[-1]}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.close()


# --- 3. the sweep ----------------------------------------------------------------------------------

def build_complaints(target, total: int, due_share: float, now: datetime) -> None:
    """`total` open complaints at level 1, `due_share` of them past their 24 h deadline, in bulk."""
    from maildesk.store.db import iso
    due_every = round(1 / due_share)
    fresh_contact = now - timedelta(hours=1)
    old_contact = now - timedelta(hours=25)

    def rows():
        for i in range(total):
            due = i % due_every == 0
            first = old_contact if due else fresh_contact
            yield (f"B{i:09d}", f"client{i}@example.fr", f"Client {i}", "Colis jamais reçu", "fr", 1, "open",
                   iso(first), iso(first), iso(first), iso(first + timedelta(hours=24)))
    with bulk(target, analyze=True, wal=True) as write:
        write("complaints", ("ref", "customer_addr", "customer_name", "subject", "lang", "level", "status",
                             "first_contact", "opened_at", "acked_at", "next_due"), rows())


def bench_sweep(sizes=None, due_share: float = 0.01) -> dict:
    out = {}
    if sizes is None:
        sizes = [n for n in SIZES["sweep"] if pg_setup.STORE == "sqlite" or n <= PG_SWEEP_MAX]
        for total in (n for n in SIZES["sweep"] if n not in sizes):
            out.setdefault("skipped", {})[f"sweep_{total}"] = (
                f"sweep over {total:,} not run on PostgreSQL (PG_SWEEP_MAX): minutes (1,000,000 measured once on "
                f"2 cores: bulk build 101 s, the 10,000 due swept in 159 s)")
    stack = Stack()
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        for total in sizes:
            db = new_database(stack.dir / f"sweep-{total}.db")
            t0 = time.perf_counter()
            build_complaints(db, total, due_share, now)
            out[f"sweep_{total}_build_s"] = time.perf_counter() - t0
            stack.write_config(storage=storage(db))
            app = stack.app()
            store, wf = app.store, app.workflow
            # the due query alone (first chunk), best of 5
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                rows = store.due_complaints(now, 1000)
                times.append(time.perf_counter() - t0)
            assert len(rows) == min(1000, -(-total // round(1 / due_share)))
            out[f"sweep_{total}_due_query_ms"] = min(times) * 1000
            # a quiet tick (nothing due yet, the usual case every sweep_seconds), best of 5
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                with store.transaction():
                    n = wf.sweep(now - timedelta(hours=2))
                times.append(time.perf_counter() - t0)
            assert n == 0
            out[f"sweep_{total}_quiet_ms"] = min(times) * 1000
            # one whole timer sweep as Daemon.tick runs it (chunks of 1000, one transaction each):
            # every due complaint escalated, its mails queued
            due = store.scalar("SELECT count(*) FROM complaints WHERE next_due <= ?", now.isoformat())
            t0 = time.perf_counter()
            while True:
                with store.transaction():
                    n = wf.sweep(now)
                if n < 1000:
                    break
            elapsed = time.perf_counter() - t0
            queued = store.scalar("SELECT count(*) FROM outbox")
            assert store.scalar("SELECT count(*) FROM complaints WHERE level = 2") == due
            out.update({f"sweep_{total}_due": due, f"sweep_{total}_full_s": elapsed,
                        f"sweep_{total}_per_due_ms": elapsed / due * 1000, f"sweep_{total}_mails_queued": queued})
            # the other clock jobs of a tick (sellers' deadlines, the admins' daily digest), apart:
            # they run once a day or rarely, but on the same clock
            for job in app.clock_jobs:
                name = getattr(job, "__qualname__", type(job).__name__).split(".<locals>")[0]
                t0 = time.perf_counter()
                try:
                    job(now)
                    result = time.perf_counter() - t0
                except Exception as e:  # reported, not fatal to the benchmark
                    result = f"{type(e).__name__}: {e} after {time.perf_counter() - t0:.1f} s"
                out.setdefault(f"sweep_{total}_clock_jobs_s", {})[name] = result
            # the daily digest itself, whatever the time of day (its job waits for [digest] send_at):
            # every number worked out over the database and the mail queued, as the job does
            from maildesk.service import digest
            t0 = time.perf_counter()
            try:
                with store.transaction():
                    digest.queue(wf, app.cfg, now)
                out[f"sweep_{total}_digest_s"] = time.perf_counter() - t0
            except Exception as e:  # reported, not fatal to the benchmark
                out[f"sweep_{total}_digest_error"] = f"{type(e).__name__}: {e} after {time.perf_counter() - t0:.1f} s"
                not_here(out, [f"sweep_{total}_digest_s"],
                         f"digest.queue failed: {type(e).__name__}: {' '.join(str(e).split())[:100]}")
            app.close()
            forget(db)
    finally:
        stack.close()
    return out


# --- 4. memory -------------------------------------------------------------------------------------

def big_complaint(size: int) -> bytes:
    """A complaint with a photo attachment, `size` bytes in all (base64 grows it by 4/3)."""
    msg = EmailMessage()
    msg["From"] = "Grosse Pièce <big@example.fr>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Photos du colis abîmé"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = f"<big-{os.urandom(4).hex()}@example.fr>"
    msg.set_content("Bonjour,\n\nvoici les photos du colis abîmé (commande n° 784512).\n\nGrosse Pièce")
    payload = int((size - 2000) * 0.75 * 76 / 77)
    msg.add_attachment(random.Random(1).randbytes(payload), maintype="image", subtype="jpeg", filename="colis.jpg")
    raw = msg.as_bytes()
    assert abs(len(raw) - size) < 50_000, len(raw)
    return raw


def memory_child(config: str, maildir: str, mode: str) -> None:
    """Runs in a child process; prints JSON with ru_maxrss figures."""
    from maildesk.app import App
    from maildesk.config import load
    from maildesk.daemon import Daemon
    st = Path(maildir).stat()
    app = App(load(config))
    Daemon(app)  # imports done
    result = {"baseline_mb": rss_mb()}
    if mode.startswith("big"):  # the parent put the message in the inbox
        result["before_mb"] = rss_mb()
        Daemon(app).once()
        result["after_mb"] = rss_mb()
        result["stored"] = app.store.scalar("SELECT count(*) FROM complaints")
        result["truncated"] = app.store.scalar("SELECT count(*) FROM events WHERE kind = 'truncated'")
        result["large"] = app.store.scalar("SELECT count(*) FROM events WHERE kind = 'large_message'")
        result["attachments"] = [dict(r) for r in app.store.all(
            "SELECT filename, size, content IS NOT NULL AS kept FROM attachments")]
        result["body_complete"] = app.store.scalar(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND body LIKE '%784512%Grosse Pièce'")
    else:
        marks = {}
        for r in range(10):
            drop_into(Path(maildir), st.st_uid, st.st_gid, (complaint(r * 1000 + i) for i in range(1000)))
            Daemon(app).once()
            marks[(r + 1) * 1000] = rss_mb()
        result["marks_mb"] = marks
        result["stored"] = app.store.scalar("SELECT count(*) FROM complaints")
    print(json.dumps(result))


def bench_memory() -> dict:
    out = {}
    for mode in ("big", "big30", "many"):
        stack = Stack()
        try:
            if mode.startswith("big"):
                stack.drop([big_complaint(25_000_000)])
            if mode == "big30":  # the same message under a 30 MB cap: fetched and parsed whole
                stack.write_config(mailbox={"max_message_mb": 30})
            res = subprocess.run([PYTHON, str(Path(__file__).resolve()), "--memory-child", mode,
                                  str(stack.config), str(stack.maildir)],
                                 capture_output=True, text=True, timeout=1800)
            assert res.returncode == 0, res.stderr[-3000:]
            doc = json.loads(res.stdout.strip().splitlines()[-1])
        finally:
            stack.close()
        if mode.startswith("big"):
            # above the cap (10 MB by default) the message is read part by part: its text whole, the
            # photo recorded by name and size; under a 30 MB cap it is fetched and parsed whole
            assert doc["stored"] == 1 and doc["truncated"] == 0 and doc["body_complete"] == 1, doc
            assert doc["large"] == (mode == "big"), doc
            [att] = doc["attachments"]
            assert att["filename"] == "colis.jpg" and att["size"] > 18_000_000 and not att["kept"], doc
        if mode == "big":
            out.update(memory_baseline_mb=doc["baseline_mb"], memory_25mb_mb=doc["after_mb"],
                       memory_25mb_extra_mb=doc["after_mb"] - doc["before_mb"])
        elif mode == "big30":
            out.update(memory_25mb_cap30_mb=doc["after_mb"])
        else:
            assert doc["stored"] == 10_000
            marks = doc["marks_mb"]
            out.update(memory_after_1000_mb=marks["1000"], memory_after_10000_mb=marks["10000"],
                       memory_growth_1000_to_10000_mb=marks["10000"] - marks["1000"])
    return out


# --- 5. the floor ----------------------------------------------------------------------------------

def bench_floor(n: int) -> dict:
    """The bare steps on this machine, per message: what maildesk's figures are a ratio of."""
    from email import policy as email_policy
    from email.parser import BytesParser
    import aiosmtplib
    raws = [complaint(i) for i in range(n)]
    out = {}
    parser = BytesParser(policy=email_policy.default)
    t0 = time.perf_counter()
    for raw in raws:
        msg = parser.parsebytes(raw)
        body = msg.get_body(preferencelist=("plain",))
        body.get_content() if body else None
        str(msg["From"]), str(msg["Subject"])
    out["floor_parse_ms"] = (time.perf_counter() - t0) / n * 1000

    stack = Stack()
    try:
        if isinstance(stack.db, Path):
            out["floor_commit_ms"] = _sqlite_commit_ms(stack.dir / "floor.db", raws)
        else:
            out["floor_commit_ms"] = pg_setup.floor_commit_ms(stack.db, raws)

        async def send_all():
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.sink.port)
            await client.connect()
            for raw in raws:
                await client.sendmail("support@imolocale.test", ["x@example.fr"], raw)
            await client.quit()
        t0 = time.perf_counter()
        asyncio.run(send_all())
        out["floor_smtp_send_ms"] = (time.perf_counter() - t0) / n * 1000
        assert stack.sink.count() == n

        stack.drop(raws)
        with stack.dovecot.client() as c:
            c.select_folder("INBOX")
            uids = c.search("ALL")
            t0 = time.perf_counter()
            for i in range(0, len(uids), 100):
                c.fetch(uids[i:i + 100], ["BODY.PEEK[]", "INTERNALDATE"])
            out["floor_imap_fetch_ms"] = (time.perf_counter() - t0) / n * 1000
    finally:
        stack.close()
    # a new complaint: fetch + parse + one commit (the daemon commits per 100) + two mails out
    per_new = (out["floor_imap_fetch_ms"] + out["floor_parse_ms"] + out["floor_commit_ms"]
               + 2 * out["floor_smtp_send_ms"])
    out["floor_new_per_s"] = 1000 / per_new
    out["floor_reply_per_s"] = 1000 / (per_new - out["floor_smtp_send_ms"])
    return out


def _sqlite_commit_ms(db: Path, raws: list[bytes]) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # as maildesk.store
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, raw BLOB)")
    t0 = time.perf_counter()
    for raw in raws:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO m (raw) VALUES (?)", (raw,))
        conn.execute("COMMIT")
    conn.close()
    return (time.perf_counter() - t0) / len(raws) * 1000


# --- 6. search -------------------------------------------------------------------------------------

def bench_search(total: int | None = None) -> dict:
    """`maildesk search` over `total` complaints, each with its customer's first mail and every tenth
    with a staff note: the index kept by the triggers as rows arrive (build), the migration that
    indexes an existing database (rebuild), and queries best of 5 (a rare word, a common word
    without its accent, a prefix, a text FTS5 refuses and is read as plain words)."""
    from maildesk.store import search as queries
    from maildesk.store.db import iso
    total = total or SIZES["search"]
    out = {}
    workdir = Path(tempfile.mkdtemp(prefix="maildesk-bench-search-"))
    path = new_database(workdir / "search.db")
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        rng = random.Random(18)
        sellers = ["Boutique Lumière", "Théière & Cie", "Maison Dupré", "Électro Plus"]

        def complaints():
            for i in range(total):
                first = iso(now - timedelta(minutes=i))
                yield (i + 1, f"B{i:09d}", f"client{i}@example.fr", f"Client{i} Lefèvre",
                       rng.choice(SUBJECTS), first, first)

        def messages():
            for i in range(total):
                text = BODIES[i % len(BODIES)].format(order=100000 + i, name=f"Client{i}")
                if i == total // 2:
                    text += " Le transporteur Zyxwvut a perdu le colis."
                yield (i + 1, f"<b{i}@example.fr>", "in", "customer", iso(now), "client@example.fr", text, text)

        def notes():
            for i in range(0, total, 10):
                yield (i + 1, iso(now), "cs@imolocale.test", "note",
                       json.dumps({"text": f"Relancé {rng.choice(sellers)} par téléphone"}))
        t0 = time.perf_counter()
        with bulk(path) as write:
            write("complaints", ("id", "ref", "customer_addr", "customer_name", "subject", "first_contact",
                                 "opened_at"), complaints())
            write("messages", ("complaint_id", "message_id", "direction", "kind", "at", "from_addr", "body",
                               "reply_text"), messages())
            write("events", ("complaint_id", "at", "actor", "kind", "detail"), notes())
        out[f"search_{total}_build_s"] = time.perf_counter() - t0
        if isinstance(path, Path):
            out[f"search_{total}_migration_s"] = _search_migration(path)
        else:
            not_here(out, [f"search_{total}_migration_s"], "PostgreSQL databases start at schema 14, search "
                     "index included: no migration builds it over existing rows")
        store = open_store(path, readonly=True)
        for name, text in (("rare", "zyxwvut"), ("common", "recu"), ("prefix", "rembours*"),
                           ("plain", '(colis "recu')):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                hits = queries.search(store, text, limit=20)
                times.append(time.perf_counter() - t0)
            out[f"search_{total}_{name}_ms"] = min(times) * 1000
            out[f"search_{total}_{name}_hits"] = len(hits)
        out[f"search_{total}_db_mb"] = size_mb(path, store)
        store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not isinstance(path, Path):
            forget(path)
    return out


def _search_migration(path: Path) -> float:
    """SQLite: the migration that builds the index over a database that has the rows but no index yet."""
    from maildesk.store.migrations import steps
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE search_index")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'search_%'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        statements = next(sts for _, sts in steps(0) if any("search_index USING fts5" in st for st in sts))
        t0 = time.perf_counter()
        with conn:
            for statement in statements:
                conn.execute(statement)
        return time.perf_counter() - t0
    finally:
        conn.close()


# --- the report ------------------------------------------------------------------------------------

ROWS = [  # keys and labels formatted with the sizes run (rows())
    # (label, key, unit, floor key for a ratio)
    ("store copy 10k complaints to PostgreSQL", "copy_10000_s", "s", None),
    ("store copy 10k: rows/s (copy + verify)", "copy_10000_rows_per_s", "rows/s", None),
    ("backlog: new complaints", "backlog_new_per_s", "msg/s", "floor_new_per_s"),
    ("backlog: customer replies", "backlog_reply_per_s", "msg/s", "floor_reply_per_s"),
    ("latency APPEND->ack (IDLE), median", "latency_median_s", "s", None),
    ("latency APPEND->ack (IDLE), p95", "latency_p95_s", "s", None),
    ("sweep {S} (1% due): due query", "sweep_{s}_due_query_ms", "ms", None),
    ("sweep {S}: quiet tick (none due)", "sweep_{s}_quiet_ms", "ms", None),
    ("sweep {S}: whole sweep, {sd:,} due", "sweep_{s}_full_s", "s", None),
    ("sweep {L} (1% due): due query", "sweep_{l}_due_query_ms", "ms", None),
    ("sweep {L}: quiet tick (none due)", "sweep_{l}_quiet_ms", "ms", None),
    ("sweep {L}: whole sweep, {ld:,} due", "sweep_{l}_full_s", "s", None),
    ("sweep: per due complaint", "sweep_{l}_per_due_ms", "ms", None),
    ("daily digest over {S} open (queued)", "sweep_{s}_digest_s", "s", None),
    ("daily digest over {L} open (queued)", "sweep_{l}_digest_s", "s", None),
    ("search {Q}: build (triggers)", "search_{q}_build_s", "s", None),
    ("search {Q}: migration (rebuild)", "search_{q}_migration_s", "s", None),
    ("search {Q}: rare word", "search_{q}_rare_ms", "ms", None),
    ("search {Q}: common word, no accent", "search_{q}_common_ms", "ms", None),
    ("search {Q}: prefix", "search_{q}_prefix_ms", "ms", None),
    ("search {Q}: FTS syntax as plain words", "search_{q}_plain_ms", "ms", None),
    ("memory: baseline (imports, app)", "memory_baseline_mb", "MB", None),
    ("memory: peak with a 25 MB message", "memory_25mb_mb", "MB", None),
    ("memory: same, cap 30 MB (parsed whole)", "memory_25mb_cap30_mb", "MB", None),
    ("memory: peak after 1,000 messages", "memory_after_1000_mb", "MB", None),
    ("memory: peak after 10,000 messages", "memory_after_10000_mb", "MB", None),
    ("privacy: erase {p:,} complaints", "privacy_erase_s", "s", None),
    ("privacy: erase, per complaint", "privacy_erase_ms_each", "ms", None),
    ("privacy: scrub after (scrub_file)", "privacy_scrub_s", "s", None),
    ("retention: sweep batch of {p:,}", "retention_batch_s", "s", None),
    ("retention: per complaint", "retention_ms_each", "ms", None),
    ("retention: VACUUM of the whole database", "retention_vacuum_full_s", "s", None),
    ("retention: night scrub (scrub_file)", "retention_scrub_s", "s", None),
    ("floor: stdlib parse", "floor_parse_ms", "ms/msg", None),
    ("floor: one commit (SQLite WAL FULL; PG)", "floor_commit_ms", "ms/msg", None),
    ("floor: one SMTP send (reused conn.)", "floor_smtp_send_ms", "ms/msg", None),
    ("floor: IMAP FETCH (100 a time)", "floor_imap_fetch_ms", "ms/msg", None),
    ("floor: new complaints, bare steps", "floor_new_per_s", "msg/s", None),
    ("floor: replies, bare steps", "floor_reply_per_s", "msg/s", None),
]


def _privacy_db(target, total: int, now: datetime) -> None:
    """`total` closed complaints 1,200 days old (each with its customer's raw mail, our
    acknowledgement, an `opened` event; every tenth with a 20 KB file). Complaint i has id i + 1,
    its mail id 2i + 1, our acknowledgement 2i + 2."""
    from maildesk.store.db import iso
    body = "Bonjour, ma commande {i} n'est jamais arrivée. " * 20
    at = [iso(now - timedelta(days=1200, minutes=i)) for i in range(total)]
    text = [body.format(i=i) for i in range(total)]
    raw = [f"From: Client {i} <client{i}@example.fr>\r\nSubject: Colis\r\n\r\n{text[i]}".encode()
           for i in range(total)]
    files = {i: os.urandom(20_000) for i in range(0, total, 10)}
    sha = {i: hashlib.sha256(content).hexdigest() for i, content in files.items()}
    with bulk(target) as write:
        write("complaints", ("id", "ref", "customer_addr", "customer_key", "customer_name", "subject", "status",
                             "first_contact", "opened_at", "acked_at", "closed_at", "rating"),
              ((i + 1, f"B{i:09d}", f"client{i}@example.fr", f"client{i}@example.fr", f"Client {i}",
                "Colis jamais reçu", "closed", at[i], at[i], at[i], at[i], 4) for i in range(total)))
        write("messages", ("id", "complaint_id", "message_id", "direction", "kind", "at", "from_addr", "to_addrs",
                           "subject", "body", "raw"),
              (row for i in range(total) for row in (
                  (2 * i + 1, i + 1, f"<m{i}@example.fr>", "in", "customer", at[i], f"client{i}@example.fr", None,
                   "Colis", text[i], raw[i]),
                  (2 * i + 2, i + 1, f"<o{i}@x>", "out", "customer:ack", at[i], "support@x", f"client{i}@example.fr",
                   "Re", f"Bonjour Client {i}", None))))
        write("outbox", ("message_id", "complaint_id", "kind", "audience", "mail_from", "rcpt", "subject", "raw",
                         "status", "next_attempt_at", "created_at", "sent_at"),
              ((f"<o{i}@x>", i + 1, "ack", "customer", "support@x", f'["client{i}@example.fr"]', "Re", raw[i],
                "sent", at[i], at[i], at[i]) for i in range(total)))
        write("events", ("complaint_id", "at", "actor", "kind", "detail"),
              ((i + 1, at[i], f"client{i}@example.fr", "opened",
                json.dumps({"level": 1, "customer": f"client{i}@example.fr"})) for i in range(total)))
        write("files", ("sha256", "size", "content"), ((sha[i], len(c), c) for i, c in files.items()))
        write("attachments", ("message_row", "filename", "content_type", "size", "sha256"),
              ((2 * i + 1, f"photo{i}.jpg", "image/jpeg", len(c), sha[i]) for i, c in files.items()))


def bench_privacy(total: int | None = None) -> dict:
    """The erase as retention will run it: `total` closed complaints (each with its customer's raw
    mail, our acknowledgement, an `opened` event; every tenth with a file) anonymised one by one,
    one transaction each (service.privacy.anonymise_complaint, secure_delete on), then the scrub
    once (scrub_file: SQLite's FTS5 merge, VACUUM and WAL truncate; PostgreSQL's VACUUM of the
    erased tables)."""
    from maildesk.service import privacy
    from maildesk.store import privacy as rows
    total = total or SIZES["privacy"]
    workdir = Path(tempfile.mkdtemp(prefix="maildesk-bench-privacy-"))
    target = new_database(workdir / "privacy.db")
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        _privacy_db(target, total, now)
        store = open_store(target)
        size_before = size_mb(target, store)
        ids = [r[0] for r in store.all("SELECT id FROM complaints ORDER BY id")]
        rows.secure(store)
        t0 = time.perf_counter()
        for cid in ids:
            privacy.anonymise_complaint(store, cid, now=now, by="retention")
        t_rows = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows.scrub_file(store)
        t_scrub = time.perf_counter() - t1
        out = {"privacy_complaints": total, "privacy_erase_s": round(t_rows, 2),
               "privacy_erase_ms_each": round(1000 * t_rows / total, 3), "privacy_scrub_s": round(t_scrub, 2),
               "privacy_db_mb_before": round(size_before, 1)}
        out["privacy_left"] = store.scalar("SELECT count(*) FROM complaints "
                                           "WHERE customer_addr NOT LIKE '%@erased.invalid'")
        out["privacy_db_mb_after"] = round(size_mb(target, store), 1)
        store.close()
        if isinstance(target, Path):  # PostgreSQL has no one file to read
            out["privacy_addresses_in_file"] = target.read_bytes().count(b"client")
        return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not isinstance(target, Path):
            forget(target)


def bench_retention(total: int | None = None) -> dict:
    """The retention sweep itself (service/retention.sweep, as the daemon's clock runs it: the
    candidate query, the rule re-checked per complaint, one transaction each, secure_delete on)
    over `total` due complaints in one batch (batch_size = total, no time budget), then the night's
    scrub at that size (scrub_file), and for comparison a VACUUM of the whole database before."""
    from types import SimpleNamespace
    from maildesk.service import retention
    from maildesk.store import privacy as rows
    total = total or SIZES["privacy"]
    workdir = Path(tempfile.mkdtemp(prefix="maildesk-bench-retention-"))
    target = new_database(workdir / "retention.db")
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        _privacy_db(target, total, now)
        store = open_store(target)
        size_full = size_mb(target, store)
        t0 = time.perf_counter()
        store.conn.execute("VACUUM")
        t_vacuum_full = time.perf_counter() - t0
        cfg = SimpleNamespace(retention=SimpleNamespace(anonymise_after_days=1095, sellers_after_days=1095,
                                                        batch_size=total))
        budget, retention.BUDGET_S = retention.BUDGET_S, float("inf")
        try:
            t1 = time.perf_counter()
            done = retention.sweep(store, cfg, now)
            t_batch = time.perf_counter() - t1
        finally:
            retention.BUDGET_S = budget
        size_after_rows = size_mb(target, store)
        t2 = time.perf_counter()
        rows.scrub_file(store)
        t_scrub = time.perf_counter() - t2
        size_after = size_mb(target, store)
        store.close()
        return {"retention_complaints": done["complaints"], "retention_batch_s": round(t_batch, 2),
                "retention_ms_each": round(1000 * t_batch / max(1, done["complaints"]), 3),
                "retention_vacuum_full_s": round(t_vacuum_full, 2), "retention_db_mb_full": round(size_full, 1),
                "retention_scrub_s": round(t_scrub, 2), "retention_db_mb_before_scrub": round(size_after_rows, 1),
                "retention_db_mb_after": round(size_after, 1)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not isinstance(target, Path):
            forget(target)


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def rows() -> list[tuple[str, str, str, str | None, tuple | None]]:
    """ROWS with the sizes of this run: (label, key, unit, floor key, goal)."""
    (s, l), q, p = SIZES["sweep"], SIZES["search"], SIZES["privacy"]
    sizes = dict(s=s, l=l, q=q, p=p, S=_short(s), L=_short(l), Q=_short(q), sd=s // 100, ld=l // 100)
    goals = {key.format(**sizes): goal for key, goal in GOALS.items()}
    return [(label.format(**sizes), key.format(**sizes), unit, floor, goals.get(key.format(**sizes)))
            for label, key, unit, floor in ROWS]


def _cell(value) -> str:
    return f"{value:>10.3f}" if isinstance(value, (int, float)) else f"{value if value is not None else '-':>10}"


def bench_copy(total: int = 10_000) -> dict:
    """`maildesk store copy` as an admin runs it (the CLI in a subprocess), into a throwaway
    PostgreSQL; the database is the one tests/integration/test_store_copy.py builds."""
    from maildesk.testing.postgres import Postgres
    from tests.integration.test_store_copy import build
    from tests.support import config_dict, write_config
    workdir = Path(tempfile.mkdtemp(prefix="maildesk-bench-copy-"))
    workdir.chmod(0o755)  # as root, PostgreSQL runs as the postgres user
    server = Postgres(workdir / "pg")
    try:
        server.start()
        db = server.database()
        config = write_config(workdir / "maildesk.toml", config_dict())
        build(workdir / "maildesk.db", total)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), "store", "copy", "--to",
                               db.url, "--password-env", "BENCH_PG_PASSWORD"], capture_output=True, text=True,
                              cwd=ROOT, env={**os.environ, "BENCH_PG_PASSWORD": db.password})
        seconds = time.perf_counter() - t0
        assert done.returncode == 0, done.stderr
        rows = int(done.stdout.splitlines()[-1].split()[0])
        return {f"copy_{total}_s": round(seconds, 2), f"copy_{total}_rows": rows,
                f"copy_{total}_rows_per_s": round(rows / seconds)}
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def table(results: dict) -> str:
    """One value column per store run (results: {store: figures}); a goal and the ratio to the
    floor per column; the n/a figures' reasons under the table."""
    stores = list(results)
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    head = " ".join(f"{names[st]:>10}" for st in stores)
    width = 40 + 11 * len(stores) + 8 + 9 * len(stores) + 9 * len(stores)
    lines = [f"{'figure':<40} {head} {'unit':<7} {'goal':<{9 * len(stores)}} {'vs floor':>{9 * len(stores)}}",
             "-" * width]
    for label, key, unit, floor, goal in rows():
        values = [results[st].get(key) for st in stores]
        if all(v is None for v in values):
            continue
        checks, ratios = [], []
        for st, value in zip(stores, values):
            numeric = isinstance(value, (int, float))
            if goal:
                op, target = goal
                ok = numeric and {">=": value >= target, "<=": value <= target, "<": value < target}[op]
                checks.append(("ok" if ok else "MISS") if numeric else "-")
            base = results[st].get(floor) if floor else None
            ratios.append(f"{value / base:.0%}" if numeric and isinstance(base, (int, float)) else "")
        goal_text = f"{goal[0]}{goal[1]} {'/'.join(checks)}" if goal else ""
        lines.append(f"{label:<40} {' '.join(_cell(v) for v in values)} {unit:<7} "
                     f"{goal_text:<{9 * len(stores)}} {'/'.join(r for r in ratios if r):>{9 * len(stores)}}")
    reasons = {}
    for st in stores:
        for key, why in results[st].get("n/a", {}).items():
            reasons.setdefault(why, set()).add(names[st])
    for why, where in reasons.items():
        lines.append(f"n/a on {', '.join(sorted(where))}: {why}")
    lines += [f"- {why}" for st in stores for why in results[st].get("skipped", {}).values()]
    return "\n".join(lines)


PARTS = {"floor": bench_floor, "backlog": bench_backlog, "latency": bench_latency,
         "sweep": bench_sweep, "memory": bench_memory, "search": bench_search, "privacy": bench_privacy,
         "retention": bench_retention}


PARTS["copy"] = bench_copy


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--serve-sink":
        serve_sink()
        return 0
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[3], sys.argv[4], sys.argv[2])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="backlog size (1 to 100000; default 1000)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--only", help="comma-separated parts among: " + ",".join(PARTS))
    p.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="sqlite",
                   help="the store to measure: SQLite (default), a throwaway PostgreSQL cluster, or both side by side")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies the bulk sizes: sweep 100,000 and 1,000,000, search 100,000, privacy and "
                        "retention 10,000 (default 1)")
    args = p.parse_args(argv)
    if not 1 <= args.n <= 100_000:
        p.error("--n must be between 1 and 100000")
    if not 0 < args.scale <= 10:
        p.error("--scale must be above 0 and at most 10")
    parts = args.only.split(",") if args.only else list(PARTS)
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        p.error(f"unknown part(s): {', '.join(unknown)}")
    SIZES.update(sweep=tuple(max(100, int(n * args.scale)) for n in SIZES["sweep"]),
                 search=max(100, int(SIZES["search"] * args.scale)),
                 privacy=max(10, int(SIZES["privacy"] * args.scale)))
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results = {st: {} for st in stores}
    try:
        for part in parts:
            for store in stores:
                pg_setup.STORE = store
                t0 = time.perf_counter()
                out = PARTS[part](args.n) if part in ("floor", "backlog") else PARTS[part]()
                for notes in ("n/a", "skipped"):  # each part's reasons kept, not replaced by the next part's
                    if merged := {**results[store].get(notes, {}), **out.get(notes, {})}:
                        out[notes] = merged
                results[store].update(out)
                print(f"[{part} on {store} done in {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    finally:
        pg_setup.stop()
    print(table(results))
    doc = {"machine_cpus": os.cpu_count(), "python": sys.version.split()[0], "sizes": SIZES,
           **(results[stores[0]] if len(stores) == 1 else results)}
    print(json.dumps(doc, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
