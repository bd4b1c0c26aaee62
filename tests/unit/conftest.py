"""The unit layer is pure: no AWS emulator, no network. Every test here runs with outbound
sockets refused, so a test that quietly needs a server (or a real endpoint) fails here and
belongs in tests/functional, tests/local or tests/e2e."""

from __future__ import annotations

import socket

import pytest


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch):
    def refuse(self, address, *args, **kwargs):
        if self.family == socket.AF_UNIX:  # multiprocessing's pipes and the like
            return socket_connect(self, address, *args, **kwargs)
        raise NetworkBlocked(f"a unit test opened a connection to {address!r}")

    socket_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
