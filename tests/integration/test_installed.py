"""maildesk as deployed: built into a wheel, installed into a fresh virtual environment outside
the checkout, answering a complaint on the local stack; and what `run`, `once` and `check` say
about a broken template."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

from maildesk.service import template_check
from tests.support import ROOT, config_dict, mail, write_config


def _run(*cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed():
    """(the installed `maildesk` program, a clean environment for it, the wheel's file names)."""
    work = Path(tempfile.mkdtemp(prefix="maildesk-wheel-"))
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).stdout.split("\0")
    source = work / "source"  # a copy of what the repository holds: the build leaves nothing in the checkout
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", work / "dist", ".", cwd=source)
    wheel = next((work / "dist").glob("maildesk-*.whl"))
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=work)
    # third-party packages come from this environment's site-packages (no network); its .pth files,
    # among them the editable install of the checkout, are not read from there
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    yield venv / "bin" / "maildesk", env, work, zipfile.ZipFile(wheel).namelist()
    shutil.rmtree(work, ignore_errors=True)


def test_the_wheel_carries_the_templates_and_the_starter_config(installed):
    _, _, _, names = installed
    for lang in ("fr", "en"):
        shipped = {Path(n).name for n in names if n.startswith(f"maildesk/shipped/templates/{lang}/")}
        assert shipped == {p.name for p in (ROOT / "templates" / lang).iterdir()}
    assert "maildesk/shipped/maildesk.toml" in names


def test_the_installed_wheel_answers_a_complaint(installed, dovecot, smtp_sink):
    program, env, work, _ = installed
    here = work / "run"  # outside the checkout, as a deployment runs it
    here.mkdir(exist_ok=True)
    python = program.parent / "python"
    where = _run(python, "-c", "import maildesk, maildesk.outbound.templates as t; print(maildesk.__file__); "
                 "print(t.DEFAULT_DIR)", cwd=here, env=env).stdout.split()
    assert all(not Path(p).is_relative_to(ROOT) for p in where), where
    assert Path(where[1]).name == "templates" and Path(where[1]).parent.name == "shipped"

    config = write_config(here / "maildesk.toml", config_dict(dovecot.port, smtp_sink.port))
    check = subprocess.run([program, "--config", config, "check"], cwd=here, env=env, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ok    templates    {template_check.count()} rendered" in check.stdout
    dovecot.append(mail(sender="camille@example.fr", subject="Colis jamais reçu"))
    once = subprocess.run([program, "--config", config, "once"], cwd=here, env=env, capture_output=True,
                          text=True, timeout=120)
    assert once.returncode == 0, once.stderr
    from email import message_from_bytes, policy
    sent = [message_from_bytes(m.data, policy=policy.default) for m in smtp_sink.messages]
    acks = [m for m in sent if str(m["To"]) == "camille@example.fr"]
    assert len(acks) == 1, [str(m["To"]) for m in sent]
    ref = str(acks[0]["X-Maildesk-Reference"])
    assert ref.startswith("IMO-") and ref in str(acks[0]["Subject"])
    assert ref in acks[0].get_body(("plain",)).get_content()
    print(f"\ninstalled wheel: maildesk at {where[0]}, templates at {where[1]}\n"
          f"check: {check.stdout.splitlines()[-2].strip()}\n"
          f"once: {len(sent)} mail(s) accepted by SMTP; acknowledgement to camille@example.fr: "
          f"{acks[0]['Subject']}")


def test_a_broken_template_stops_run_once_and_check_with_one_line(desk):
    mine = desk.dir / "templates"
    (mine / "fr").mkdir(parents=True)
    (mine / "fr" / "ack.txt").write_text("Subject: {{ ref }\n", encoding="utf-8")
    desk.write_config(templates={"dir": "templates"})
    desk.deliver(mail())
    for command in ("once", "run"):
        result = desk.cli(command)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"maildesk: template {mine / 'fr' / 'ack.txt'} line 1: unexpected '}}'\n"
    check = desk.cli("check")
    assert check.returncode == 2
    assert f"FAIL  templates    template {mine / 'fr' / 'ack.txt'} line 1" in check.stdout
    assert desk.folder("INBOX") == 1 and not desk.sink.messages  # nothing was taken in half-way

    (mine / "fr" / "ack.txt").unlink()  # the shipped copy fills in
    assert desk.cli("once").returncode == 0
    assert len(desk.sent(to="camille@example.fr")) == 1
