"""CLI paths against the scripted loopback API (tests/client/fake_api.py): readiness, the local
stack's launcher, cancelling, waiting on runs that fail or take too long, the CI gate's reports
when it errors, and the progress bar."""

from __future__ import annotations

import socket
import sys
from contextlib import ExitStack

import pytest
from assay import Client, NotReadyError, cli
from assay.errors import AuthenticationError

from tests.client.fake_api import envelope, fake_api, reply

KEY = "ask_cli_unit_key_0123456789abcdef"
RUN_ID = "22222222-2222-4222-8222-222222222222"
HEALTH = {"status": "ok", "version": "0.1.0"}
PROJECTS = {"items": [], "count": 0, "next_cursor": None}


def run_cli(url: str, *args: str) -> int:
    return cli.main(["--url", url, "--api-key", KEY, *args])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


# ---------------------------------------------------------------------------- health
def test_cli_health_checks_the_api_and_the_key(capsys):
    with fake_api() as api:
        api.on("GET", "/v1/health", reply(200, HEALTH))
        api.on("GET", "/v1/projects", reply(200, PROJECTS))
        assert run_cli(api.url, "health") == 0
        out = capsys.readouterr().out
        assert "is up (status ok, version 0.1.0); API key accepted" in out
        assert api.calls("GET", "/v1/health")[0].headers.get("authorization") is None
        assert api.calls("GET", "/v1/projects")[0].headers["authorization"] == f"Bearer {KEY}"
        api.on("GET", "/v1/projects", envelope(401, "auth.invalid_key", "invalid API key", "req-401"))
        assert run_cli(api.url, "health") == 2
        assert "code auth.invalid_key" in capsys.readouterr().err


def test_cli_health_wait_returns_once_the_server_is_up(capsys):
    port = free_port()
    servers = ExitStack()
    polls: list[float] = []

    def start_on_third_poll(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            api = servers.enter_context(fake_api(port))
            api.on("GET", "/v1/health", reply(200, HEALTH))
            api.on("GET", "/v1/projects", reply(200, PROJECTS))

    client = Client(f"http://127.0.0.1:{port}", KEY)
    with servers:
        assert client.wait_until_ready(timeout=30, poll_interval=0.01, sleep=start_on_third_poll) == HEALTH
    assert len(polls) == 3


def test_cli_health_wait_exits_3_when_nothing_answers_in_time(capsys):
    code = run_cli(f"http://127.0.0.1:{free_port()}", "health", "--wait", "--timeout", "0.3",
                   "--poll-interval", "0.05")
    err = capsys.readouterr().err
    assert code == 3 and "not ready after 0.3 s" in err and "refused" in err.lower()


def test_wait_until_ready_retries_a_rejected_key_only_for_the_grace_period():
    # The local stack creates its bootstrap key just after it starts listening: a 401 first ...
    with fake_api() as api:
        api.on("GET", "/v1/health", reply(200, HEALTH))
        api.on("GET", "/v1/projects", [envelope(401, "auth.invalid_key"), envelope(401, "auth.invalid_key"),
                                       reply(200, PROJECTS)])
        clock = FakeClock()
        client = Client(api.url, KEY)
        assert client.wait_until_ready(timeout=60, clock=clock, sleep=clock.sleep) == HEALTH
        assert len(api.calls("GET", "/v1/projects")) == 3
        # ... but a key that stays rejected is an error (exit 2), not a wait until the timeout
        api.on("GET", "/v1/projects", envelope(401, "auth.invalid_key"))
        clock = FakeClock()
        with pytest.raises(AuthenticationError):
            client.wait_until_ready(timeout=600, key_grace=5, poll_interval=1, clock=clock, sleep=clock.sleep)
        assert 5 <= clock.now < 10


def test_wait_until_ready_gives_up_with_the_last_error():
    with fake_api() as api:
        api.on("GET", "/v1/health", envelope(503, "server.internal_error", "warming up"))
        clock = FakeClock()
        with pytest.raises(NotReadyError) as caught:
            Client(api.url, KEY).wait_until_ready(timeout=3, poll_interval=1, clock=clock, sleep=clock.sleep)
    assert "warming up" in str(caught.value) and caught.value.last_error is not None


# ---------------------------------------------------------------------------- local up
def test_cli_local_up_becomes_the_server_process_so_a_kill_reaches_it(monkeypatch, capsys):
    execs: list[tuple] = []

    def fake_execve(path, argv, env):
        execs.append((path, argv, env))
        raise SystemExit(0)  # execve does not return

    monkeypatch.setattr(cli.os, "execve", fake_execve)
    monkeypatch.setattr(cli.os, "name", "posix")
    with pytest.raises(SystemExit):
        cli.main(["local", "up", "--port", "3999", "--bootstrap-key", "ask_local_dev_key_change_me"])
    [(path, argv, env)] = execs
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "assay_local", "serve", "--port", "3999"]
    assert env["ASSAY_BOOTSTRAP_KEY"] == "ask_local_dev_key_change_me"
    assert "assay health --wait" in capsys.readouterr().err
