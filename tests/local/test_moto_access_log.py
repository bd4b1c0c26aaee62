"""werkzeug's access log line for moto's requests built only when it is written
(assay_local.moto_access_log): the same line at INFO, nothing built when the logger drops it."""

from __future__ import annotations

import logging

import pytest
from assay_local import moto_access_log, moto_hooks
from werkzeug import _internal
from werkzeug.serving import WSGIRequestHandler

ORIGINAL = moto_access_log._original_log_request


class _Handler(WSGIRequestHandler):
    def __init__(self) -> None:  # no socket: only what log_request reads
        self.path, self.command, self.request_version = "/a%20b", "POST", "HTTP/1.1"
        self.client_address = ("127.0.0.1", 1234)
        self.formatted = 0

    def log_date_time_string(self) -> str:
        self.formatted += 1
        return "07/Dec/2026 18:00:00"


@pytest.fixture
def werkzeug_logger(monkeypatch):
    logger = logging.getLogger("werkzeug")
    monkeypatch.setattr(logger, "level", logger.level)  # put back after the test
    monkeypatch.setattr(_internal, "_logger", _internal._logger)
    return logger


@pytest.mark.parametrize("code", [200, 404, 500, "-"])
def test_the_same_line_at_info(werkzeug_logger, caplog, code):
    werkzeug_logger.setLevel(logging.INFO)
    lines = []
    for log_request in (ORIGINAL, moto_access_log.log_request):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            log_request(_Handler(), code, 12)
        lines.append([r.getMessage() for r in caplog.records])
    assert lines[0] == lines[1] and len(lines[0]) == 1


def test_nothing_built_when_dropped(werkzeug_logger):
    werkzeug_logger.setLevel(logging.WARNING)
    handler = _Handler()
    ORIGINAL(handler, 200, 1)  # werkzeug sets its logger up on its first message
    assert handler.formatted == 1 and _internal._logger is werkzeug_logger
    moto_access_log.log_request(handler, 200, 1)
    assert handler.formatted == 1


def test_not_set_up_yet_goes_to_werkzeug(werkzeug_logger, monkeypatch):
    werkzeug_logger.setLevel(logging.WARNING)
    monkeypatch.setattr(_internal, "_logger", None)
    handler = _Handler()
    moto_access_log.log_request(handler, 200, 1)
    assert handler.formatted == 1 and _internal._logger is werkzeug_logger


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(WSGIRequestHandler, "log_request", ORIGINAL)  # put back after
    moto_hooks.install(moto_access_log)
    moto_hooks.install(moto_access_log)
    assert moto_hooks.installed(moto_access_log)
