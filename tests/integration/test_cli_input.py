"""The command line against hostile input: every command stops with one line
and an exit status (2 usage or config, 1 refused), never a traceback; what
came from outside is printed escaped; references are read as mail tags are."""
from __future__ import annotations

import csv
import json
import pytest

from maildesk.store.db import Store
from maildesk.cli import main as cli
from maildesk.core import refs
from tests.support import SUPPORT, config_dict, mail, maildesk, write_config

HOSTILE = "\x1b[2J\x07\x00\u202e\u2066\x9b\u2028\u200b"  # ESC CSI, BEL, NUL, RLO, LRI, C1 CSI, LS, ZWSP
ESCAPED = "\\x1b[2J\\x07\\x00\\u202e\\u2066\\x9b\\u2028\\u200b"
RAW = [ch for ch in HOSTILE if not ch.isprintable()]


@pytest.fixture
def here(tmp_path):
    """A config whose servers are closed ports: these commands need none."""
    write_config(tmp_path / "maildesk.toml", config_dict())
    return tmp_path


def run(config, *args, capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(["--config", str(config), *args])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err and "bug in maildesk" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("maildesk")]
    assert len(lines) == 1, err
    return lines[0]


def files(d):
    (d / "adir").mkdir()
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "deep-item.json").write_text('[{"id": "s1", "shop_name": ' + "[" * 50_000 + "]" * 50_000 + "}]")
    (d / "bigint.json").write_text('[{"id": ' + "1" * 5000 + "}]")
    (d / "scalar.json").write_text('"sellers"')
    (d / "other.json").write_text('{"shops": []}')
    (d / "latin1.csv").write_bytes(b"id,shop_name,address\ns1,Caf\xe9,s1@shop.test\n")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (d / "gzip.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(64))
    (d / "empty.csv").write_text("")
    (d / "blank.csv").write_text("\n\n  \n")
    (d / "columns.csv").write_text("name;mail\nShop;s@shop.test\n")
    (d / "nul.csv").write_text("\x00" * 64)


# (arguments, expected status, text expected on stderr)
TABLE = [
    (["seller", "import", "missing.csv"], 1, "cannot read missing.csv: No such file"),
    (["seller", "import", "adir"], 1, "Is a directory"),
    (["seller", "import", "deep.json"], 1, "nested too deeply"),
    (["seller", "import", "deep-item.json"], 1, "nested too deeply"),
    (["seller", "import", "bigint.json"], 1, "not valid JSON"),
    (["seller", "import", "scalar.json"], 1, "JSON must be a list"),
    (["seller", "import", "other.json"], 1, "JSON must be a list"),
    (["seller", "import", "latin1.csv"], 1, "not UTF-8 text"),
    (["seller", "import", "binary.csv"], 1, "not UTF-8 text"),
    (["seller", "import", "gzip.csv"], 1, "not UTF-8 text"),
    (["seller", "import", "empty.csv"], 1, "the first line must name the columns"),
    (["seller", "import", "blank.csv"], 1, "the first line must name the columns"),
    (["seller", "import", "columns.csv"], 1, "the first line must name the columns"),
    (["seller", "import", "nul.csv"], 1, "the first line must name the columns"),
    (["seller", "import"], 2, "required: file"),
    (["seller", "show", "nobody"], 1, "no seller nobody"),
    (["seller", "show", ""], 1, "no seller"),
    (["seller", "show", "\udcff"], 2, "argument id is not UTF-8 text"),
    (["seller", "show", HOSTILE], 1, "no seller " + ESCAPED),
    (["seller", "restrict", "\udcff", "--reason", "x"], 2, "not UTF-8 text"),
    (["seller", "terminate", "nobody", "--reason", "x"], 1, "no seller nobody"),
    (["seller", "list", "--status", "gone"], 2, "invalid choice"),
    (["seller", "frobnicate"], 2, "invalid choice"),
    (["show", "IMO-AAAAAA"], 1, "no complaint IMO-AAAAAA"),
    (["show", ""], 1, "no complaint"),
    (["show", "\udcff"], 2, "argument ref is not UTF-8 text"),
    (["show", HOSTILE], 1, "no complaint " + ESCAPED),
    (["show", "x" * 100_000], 1, "no complaint"),
    (["show"], 2, "required: ref"),
    (["resolve", "IMO-AAAAAA"], 1, "no complaint IMO-AAAAAA"),
    (["resolve", "\udcff"], 2, "not UTF-8 text"),
    (["link", "IMO-AAAAAA", "s1"], 1, "no complaint IMO-AAAAAA"),
    (["link", "\udcff", "s1"], 2, "not UTF-8 text"),
    (["link", "IMO-AAAAAA", "\udcff"], 2, "not UTF-8 text"),
    (["list", "--customer", "\udcff"], 2, "not UTF-8 text"),
    (["list", "--seller", "\udcff"], 2, "not UTF-8 text"),
    (["list", "--limit", "99999999999999999999999"], 2, "out of range"),
    (["list", "--limit", "-1"], 2, "out of range"),
    (["list", "--limit", "ten"], 2, "not a whole number"),
    (["list", "--level", "9"], 2, "invalid choice"),
    (["outbox", "--retry", "99999999999999999999"], 2, "out of range"),
    (["outbox", "--retry", "12"], 1, "no waiting or failed mail #12"),
    (["quarantine", "retry", "99999999999999999999"], 2, "out of range"),
    (["quarantine", "retry"], 2, "name the UIDs"),
    (["quarantine", "purge"], 2, "invalid choice"),
    (["digest", "--date", "0001-01-01"], 2, "--date must look like"),
    (["digest", "--date", "2026-13-45"], 2, "--date must look like"),
    (["import-mbox", "adir"], 1, "is not a file"),
    (["nonsense"], 2, "invalid choice"),
]


def test_every_command_refuses_bad_input_in_one_line(here, capsys, monkeypatch):
    files(here)
    monkeypatch.chdir(here)
    for args, status, expected in TABLE:
        code, out, err = run(here / "maildesk.toml", *args, capsys=capsys)
        line = one_line(err)
        assert (code, expected in line) == (status, True), (args, code, line)


def config_problems(d) -> dict:
    (d / "broken.toml").write_text("[mailbox\nhost =")
    (d / "latin1.toml").write_bytes(b"[mailbox]\nhost = \"h\xe9\"\n")
    (d / "adir.toml").mkdir()
    write_config(d / "badtz.toml", config_dict(policy={"timezone": "Mars/Olympus"}))
    write_config(d / "nosecret.toml", config_dict(mailbox={"password": None, "password_env": "MAILDESK_TEST_UNSET"}))
    return {"missing.toml": "does not exist", "broken.toml": "not valid TOML", "latin1.toml": "not UTF-8 text",
            "adir.toml": "Is a directory", "badtz.toml": "policy.timezone"}


COMMANDS = [["run"], ["once"], ["show", "IMO-AAAAAA"], ["resolve", "IMO-AAAAAA"], ["list"], ["status"],
            ["check"], ["digest"], ["outbox"], ["quarantine"], ["quarantine", "retry", "--all"],
            ["seller", "list"], ["seller", "show", "s1"], ["seller", "import", "x.csv"], ["link", "IMO-AAAAAA", "s1"],
            ["import-mbox", "x.mbox"], ["auth", "gmail"]]


def test_a_broken_config_is_one_line_and_status_2_for_every_command(here, capsys):
    for name, expected in config_problems(here).items():
        for args in COMMANDS:
            code, out, err = run(here / name, *args, capsys=capsys)
            assert (code, expected in one_line(err)) == (2, True), (name, args, err)
    Store(here / "maildesk.db").close()  # a database to read: then the missing password is what stops them
    for args in (["quarantine"], ["quarantine", "retry", "--all"], ["once"], ["run"]):  # they need the password
        code, out, err = run(here / "nosecret.toml", *args, capsys=capsys)
        assert (code, "MAILDESK_TEST_UNSET" in one_line(err)) == (2, True), (args, err)


def test_database_problems_are_one_line(here, capsys):
    (here / "maildesk.db").write_text("not a database")
    for args in (["list"], ["show", "IMO-AAAAAA"], ["seller", "list"], ["status", "--no-connect"], ["once"]):
        code, out, err = run(here / "maildesk.toml", *args, capsys=capsys)
        assert (code, "database problem: file is not a database" in one_line(err)) == (1, True), (args, err)


def test_an_unexpected_error_is_named_a_bug_in_one_line_and_debug_shows_it(here, capsys, monkeypatch):
    def broken(app, args):
        raise ValueError("something nobody expected")
    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    Store(here / "maildesk.db").close()  # read commands need a database to exist
    code, out, err = run(here / "maildesk.toml", "list", capsys=capsys)
    assert code == 1 and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("maildesk: unexpected error, a bug in maildesk: ValueError: something nobody expected")
    assert "--debug" in line
    with pytest.raises(ValueError):
        cli.main(["--config", str(here / "maildesk.toml"), "--debug", "list"])
    monkeypatch.setenv("MAILDESK_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["--config", str(here / "maildesk.toml"), "list"])


def test_the_real_process_prints_no_traceback(here):
    """Through the interpreter as an admin runs it: the inputs that printed tracebacks before."""
    files(here)
    big = here / "big.csv"
    big.write_text(f'id,shop_name,address\ns1,"{"a" * 200_000}",s1@shop.test\ns2,Fine shop,s2@shop.test\n')
    write_config(here / "nosecret.toml", config_dict(mailbox={"password": None, "password_env": "MAILDESK_TEST_UNSET"}))
    (here / "adir.toml").mkdir()
    cases = [(here / "maildesk.toml", ["seller", "import", str(here / "deep.json")], 1),
             (here / "nosecret.toml", ["quarantine"], 2),
             (here / "adir.toml", ["list"], 2)]
    for config, args, status in cases:
        result = maildesk(config, *args)
        assert result.returncode == status and "Traceback" not in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1, result.stderr
    result = maildesk(here / "maildesk.toml", "seller", "import", str(big))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "added    s2" in result.stdout and "rejected line 2: shop_name is longer than 200" in result.stdout


def test_seller_import_refuses_control_characters_and_misaligned_rows(here, capsys):
    path = here / "sellers.csv"
    path.write_text("id,shop_name,address\n"
                    "s1,Shop\x1b[31m,s1@shop.test\n"
                    "s2,Shop\x00,s2@shop.test\n"
                    "s3,Shop \x9b1m,s3@shop.test\n"
                    "s4,Acme, Inc,s4@shop.test\n"
                    "s5,Boutique \u202eevil,s5@shop.test\n"
                    f"s6,{'a' * 200_000},s6@shop.test\n")
    code, out, err = run(here / "maildesk.toml", "seller", "import", str(path), capsys=capsys)
    assert code == 1 and err == ""
    assert csv.field_size_limit() == 131072  # raised for the file, then put back
    assert out.splitlines() == [
        "1 added, 0 updated, 0 unchanged, 5 rejected",
        "  added    s5",
        "  rejected line 2: shop_name holds a control character ('\\x1b')",
        "  rejected line 3: shop_name holds a control character ('\\x00')",
        "  rejected line 4: shop_name holds a control character ('\\x9b')",
        "  rejected line 5: more values than the first line names columns (a separator inside an unquoted value?)",
        "  rejected line 7: shop_name is longer than 200 characters"]


# --- what came from outside is printed escaped --------------------------------------


def hostile_database(desk) -> str:
    """A complaint, its failed mail, a quarantined message and a seller whose text holds HOSTILE
    (the intake strips such characters; data from older versions or other tools may not)."""
    desk.sink.refuse_all()
    desk.deliver(mail(subject="Colis"))
    desk.deliver(b"Subject: no sender here\r\nTo: " + SUPPORT.encode() + b"\r\n\r\nhello\r\n")
    desk.once()
    with desk.db() as db:
        db.execute("UPDATE complaints SET subject = ?, customer_name = ?, customer_addr = ?",
                   (f"Colis {HOSTILE} fin", f"Camille{HOSTILE}", f"camille{HOSTILE}@example.fr"))
        db.execute("UPDATE outbox SET subject = ?, rcpt = ?", (f"Re {HOSTILE}", json.dumps([f"x{HOSTILE}@y.test"])))
        db.execute("UPDATE quarantine SET sender = ?, reason = ?", (f"q{HOSTILE}@x.test", f"why {HOSTILE}"))
        db.execute("INSERT INTO sellers (id, shop_name, address, phone, status, created_at, updated_at) "
                   "VALUES ('s1', ?, ?, ?, 'active', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
                   (f"Shop{HOSTILE}", f"s1{HOSTILE}@shop.test", f"+33{HOSTILE}"))
    return desk.rows("SELECT ref FROM complaints")[0]["ref"]


def test_printers_escape_control_and_bidi_characters_and_json_keeps_them(desk):
    ref = hostile_database(desk)
    # PostgreSQL's text cannot hold a NUL: the store keeps U+FFFD in its place (store/postgres.py)
    stored, escaped = (HOSTILE, ESCAPED) if desk.pg is None else \
        (HOSTILE.replace("\x00", "\ufffd"), ESCAPED.replace("\\x00", "\ufffd"))
    for args in (["list"], ["show", ref], ["outbox"], ["quarantine", "list"], ["seller", "list"],
                 ["seller", "show", "s1"], ["status", "--no-connect"]):
        result = desk.cli(*args)
        # status: no daemon runs here, so its health is "down" (exit 2); the printing is what is tested
        assert result.returncode == (2 if args[0] == "status" else 0), (args, result.stderr)
        shown = result.stdout
        assert not any(ch in shown for ch in RAW), (args, shown)
        assert "\\x1b[2J" in shown, (args, shown)
    assert f"Colis {escaped} fin" in desk.cli("show", ref).stdout
    assert f"Camille{escaped} <camille{escaped}@example.fr>" in desk.cli("show", ref).stdout
    assert f"Shop{escaped}" in desk.cli("seller", "list").stdout

    for args, pick in ((["list", "--json"], lambda d: d[0]["subject"]),
                       (["show", ref, "--json"], lambda d: d["complaint"]["customer_name"]),
                       (["outbox", "--json"], lambda d: d[0]["to"][0]),
                       (["quarantine", "--json"], lambda d: d[0]["sender"]),
                       (["seller", "list", "--json"], lambda d: d[0]["shop_name"]),
                       (["seller", "show", "s1", "--json"], lambda d: d["seller"]["address"])):
        result = desk.cli(*args)
        assert not any(ch in result.stdout for ch in RAW), (args, result.stdout)
        picked = pick(json.loads(result.stdout))  # a JSON column (the outbox's rcpt) keeps its NUL as \u0000
        assert HOSTILE in picked or stored in picked, args


def test_output_to_a_terminal_that_cannot_show_accents_is_escaped_not_an_error(here):
    path = here / "sellers.csv"
    path.write_text("id,shop_name,address\ns1,Café € ☕,s1@shop.test\n")
    assert maildesk(here / "maildesk.toml", "seller", "import", str(path)).returncode == 0
    result = maildesk(here / "maildesk.toml", "seller", "list", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "Caf\\xe9 \\u20ac \\u2615" in result.stdout


# --- references as forgivingly as mail tags ---------------------------------------


def test_show_resolve_and_link_read_references_as_mail_tags_are_read(desk):
    desk.deliver(mail(subject="Colis"))
    desk.once()
    code = "0A0B0"
    ref = f"IMO-{code}{refs.check_symbol(code)}"
    with desk.db() as db:
        db.execute("UPDATE complaints SET ref = ?", (ref,))
    for typed in (ref, ref.lower(), f"  {ref}  ", f"[{ref}]", f" [ {ref.lower()} ] ", ref.replace("0", "O"),
                  ref.replace("0", "o").lower(), f"Re: [{ref}] Colis", ref.replace("-", " - ")):
        result = desk.cli("show", typed, "--json")
        assert result.returncode == 0, (typed, result.stderr)
        assert json.loads(result.stdout)["complaint"]["ref"] == ref
    wrong = ref[:-1] + ("X" if ref[-1] != "X" else "Y")
    result = desk.cli("show", wrong)
    assert result.returncode == 1 and result.stderr.strip() == f"maildesk: no complaint {wrong}"
    sellers = desk.dir / "sellers.csv"
    sellers.write_text("id,shop_name,address\ns1,Shop,s1@shop.test\n")
    assert desk.cli("seller", "import", str(sellers)).returncode == 0
    result = desk.cli("link", f"{ref.replace('0', 'O').lower()} ", "s1")
    assert result.returncode == 0 and result.stdout.startswith(f"{ref} linked to s1"), result.stderr
    result = desk.cli("resolve", f" [{ref.replace('0', 'O').lower()}]")
    assert result.returncode == 0 and result.stdout.startswith(f"{ref} resolved"), result.stderr
