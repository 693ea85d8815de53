"""Unit tests touch no database, socket or temporary file: what needs one is an
integration test (tests/integration). Refused here, so a unit test that starts to
need I/O says so instead of quietly becoming slow and flaky."""
from __future__ import annotations

import socket
import sqlite3

import pytest


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a unit test opened {what}: it belongs in tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def _no_io(monkeypatch):
    monkeypatch.setattr(sqlite3, "connect", _refuse("a database"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("a socket"))
    monkeypatch.setattr(socket, "create_connection", _refuse("a socket"))


@pytest.fixture
def tmp_path():
    raise AssertionError("a unit test asked for a temporary folder: it belongs in tests/integration")


tmpdir = tmp_path_factory = tmp_path
