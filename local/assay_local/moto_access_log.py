"""moto's access log line built only when it will be written.

moto's server is werkzeug's, which builds an access log line for every request (the path
decoded, the date formatted, the address and the status styled) and only then hands it to
the ``werkzeug`` logger — which the local stack sets to WARNING, so the line is dropped.
The replacement asks the logger first: once werkzeug has set its logger up (its first
message does that), a request whose INFO line that logger would drop is not formatted at
all; anything else — the logger not set up yet, INFO enabled — goes to werkzeug's own
``log_request``, which writes the same line as before. No owner, no state: installing it
twice is installing it once.
"""

from __future__ import annotations

import logging

from werkzeug import _internal
from werkzeug.serving import WSGIRequestHandler

from assay_local.moto_hooks import Replacement

_original_log_request = WSGIRequestHandler.log_request
if not hasattr(_internal, "_logger"):  # what log_request reads: fail here, not per request
    raise ImportError("werkzeug no longer has _internal._logger")


def log_request(self: WSGIRequestHandler, code: int | str = "-", size: int | str = "-") -> None:
    logger = _internal._logger
    if logger is not None and not logger.isEnabledFor(logging.INFO):
        return  # werkzeug's would call logger.info(…), which drops it
    _original_log_request(self, code, size)


REPLACEMENTS = (Replacement(WSGIRequestHandler, "log_request", log_request),)
