"""`check` names a folder the service user cannot pass on the way to the interpreter
(as /root is to a `maildesk` user), on real folders and permissions."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from maildesk.cli import check


def test_a_folder_closed_to_the_service_user_is_named():
    base = Path(tempfile.mkdtemp())  # /tmp/xyz, open to all like /
    os.chmod(base, 0o755)
    try:
        _closed_folder_is_named(base / "root-like")
    finally:
        shutil.rmtree(base)


def _closed_folder_is_named(home: Path) -> None:
    (home / "bin").mkdir(parents=True)
    python = home / "bin" / "python3"
    python.write_text("")
    os.chmod(python, 0o755)
    os.chmod(home, 0o700)  # /root
    me = os.getuid()
    other = me + 4242
    assert check._can_reach(python, me, set()) is None
    assert check._can_reach(python, other, set()) == home
    os.chmod(home, 0o750)
    assert check._can_reach(python, other, {os.stat(home).st_gid}) is None  # in the folder's group
    assert check._can_reach(python, other, set()) == home
