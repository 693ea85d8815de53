"""The tests' CLI calls fork from a preloaded process (tests/zygote.py): each must behave as
`python -m maildesk` started afresh does (output, exit status, environment read at the call,
signals), or every CLI test would be testing something else."""
from __future__ import annotations

import os

import pytest

import tests.support as support


def both(config, *args, env=None):
    forked = support.maildesk(config, *args, env=env)
    os.environ["MAILDESK_TEST_EXEC"] = "1"
    try:
        started = support.maildesk(config, *args, env=env)
    finally:
        del os.environ["MAILDESK_TEST_EXEC"]
    return forked, started


@pytest.mark.parametrize("args", [("--version",), ("list",), ("nonsense",), ("show", "IMO-0")])
def test_a_forked_call_prints_and_exits_as_a_fresh_process(desk, args):
    forked, started = both(desk.config, *args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (started.returncode, started.stdout, started.stderr)


def test_a_forked_call_reads_the_environment_it_is_given_and_can_be_killed(desk):
    """MAILDESK_KILL_AT, read at the first counted step, kills the child exactly as it kills a fresh one."""
    desk.deliver(support.mail())
    forked = support.maildesk(desk.config, "once", env={"MAILDESK_KILL_AT": "1"})
    assert forked.returncode == -9
    again = support.maildesk(desk.config, "once")
    assert again.returncode == 0, again.stderr
    assert len(desk.sent(to="camille@example.fr")) == 1  # acknowledged once, after the kill
