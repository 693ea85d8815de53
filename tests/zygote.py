"""A process that has imported maildesk once and forks a fresh child for every CLI call the tests make.

Each `maildesk ...` the tests run as an admin would is still its own process, with its own
environment, working folder, stdout/stderr, exit status and signals; what it skips is Python's
start-up and the ~0.5 s of imports, which the ~700 CLI calls of a test run otherwise pay each time.
The difference from `python -m maildesk`: modules are imported before the call's environment is
set, so maildesk reads its environment when it runs, never at import; a call that changes what
Python itself reads at start-up (PYTHONIOENCODING, the locale) is started afresh instead
(tests/integration/test_zygote.py).

Protocol, one JSON object per line: the test process writes
{"id", "argv", "env", "cwd", "stdout", "stderr"} (the last two: files to write to); this process
answers {"id", "pid"} once the child is forked and {"id", "status"} when it ended (a negative
status is the signal that ended it, as in subprocess).
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import threading
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def preload() -> None:
    """Everything a CLI call may import (psycopg only when the run is on PostgreSQL)."""
    import importlib
    names = ["maildesk.cli.main", "maildesk.cli.store_copy", "maildesk.app", "maildesk.daemon", "maildesk.standby",
             "maildesk.service.importer", "maildesk.service.template_check", "maildesk.adapters.oauth2"]
    if os.environ.get("MAILDESK_TEST_STORE") == "postgresql":
        names.append("maildesk.store.postgres")
    for name in names:
        importlib.import_module(name)


def _highest_fd() -> int:
    return max(int(name) for name in os.listdir("/proc/self/fd"))


def child(request: dict) -> None:
    """In the forked child: become `python -m maildesk ARGS` for this request, then exit."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.closerange(3, _highest_fd() + 1)  # the zygote's selector and its other children's pidfds
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = [str(ROOT / "maildesk" / "__main__.py"), *request["argv"]]
        from maildesk.cli.main import main
        try:
            code = main(request["argv"])
        except SystemExit as exc:
            code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)  # as Python does: the status says SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        import atexit
        atexit._run_exitfuncs()  # logging's shutdown flushes handlers, as at a normal exit
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code & 0xFF)


def serve() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test run's Ctrl-C is for pytest
    preload()
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
    requests: dict[int, str] = {}

    def reply(doc: dict) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    pending = b""  # os.read, not readline: a buffered second request would never wake select()
    while True:
        for key, _ in sel.select():
            if key.data is None:  # requests, or EOF: the test process is gone
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    request = json.loads(line)
                    sys.stdout.flush()
                    pid = os.fork()
                    if pid == 0:
                        child(request)
                    pidfd = os.pidfd_open(pid)
                    sel.register(pidfd, selectors.EVENT_READ, pid)
                    requests[pid] = request["id"]
                    reply({"id": request["id"], "pid": pid})
            else:
                pid = key.data
                sel.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                reply({"id": requests.pop(pid), "status": os.waitstatus_to_exitcode(status)})


def _interpreter_env(env) -> dict:
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LC_")) or k == "LANG"}


class Zygote:
    """The test process's side: one zygote per test process, started at the first call."""

    def __init__(self) -> None:
        import subprocess
        import atexit, shutil, tempfile  # noqa: E401
        self._out_dir = tempfile.mkdtemp(prefix="maildesk-cli-out-")
        atexit.register(shutil.rmtree, self._out_dir, True)
        self._interpreter_env = _interpreter_env(os.environ)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote"], cwd=str(ROOT), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, dict] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True, name="zygote-replies").start()

    def can_run(self, env: dict) -> bool:
        """Whether a call with this environment starts as the zygote did: what Python reads once at
        its own start-up (PYTHONIOENCODING, the locale, ...) cannot change in a forked child."""
        return _interpreter_env(env) == self._interpreter_env

    def _read(self) -> None:
        for line in self._proc.stdout:
            doc = json.loads(line)
            with self._cond:
                self._waiting.setdefault(doc["id"], {}).update(doc)
                self._cond.notify_all()
        with self._cond:
            self._waiting[-1] = {"gone": True}
            self._cond.notify_all()

    def _wait_for(self, rid: int, key: str, timeout: float | None) -> dict | None:
        with self._cond:
            ok = self._cond.wait_for(lambda: key in self._waiting.get(rid, {}) or -1 in self._waiting, timeout)
            if -1 in self._waiting and key not in self._waiting.get(rid, {}):
                raise RuntimeError("the test zygote died; run with MAILDESK_TEST_EXEC=1 to see the CLI start")
            return self._waiting[rid] if ok else None

    def run(self, argv: list[str], env: dict, cwd: str, timeout: float):
        import subprocess
        with self._lock:
            self._next += 1
            rid = self._next
            stdout, stderr = f"{self._out_dir}/{rid}.out", f"{self._out_dir}/{rid}.err"
            self._proc.stdin.write(json.dumps({"id": rid, "argv": argv, "env": env, "cwd": cwd,
                                               "stdout": stdout, "stderr": stderr}) + "\n")
            self._proc.stdin.flush()
        forked = self._wait_for(rid, "pid", 30)
        if forked is None:
            raise RuntimeError("the test zygote forked nothing in 30 s")
        pid = forked["pid"]
        done = self._wait_for(rid, "status", timeout)
        if done is None:
            os.kill(pid, signal.SIGKILL)
            self._wait_for(rid, "status", 30)
        with self._cond:
            self._waiting.pop(rid, None)
        texts = []
        for path in (stdout, stderr):
            texts.append(Path(path).read_text())  # as subprocess.run(text=True) decodes
            os.unlink(path)
        args = [sys.executable, "-m", "maildesk", *argv]
        if done is None:
            raise subprocess.TimeoutExpired(args, timeout, output=texts[0], stderr=texts[1])
        return subprocess.CompletedProcess(args, done["status"], texts[0], texts[1])


if __name__ == "__main__":
    serve()
