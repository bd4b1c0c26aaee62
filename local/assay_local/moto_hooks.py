"""One replaced moto method, owned by one object at a time.

The local stack reaches into moto where it has no public extension point (its Lambda
invocation, the end of a Step Functions execution). moto's backends are process-global, so
each such patch is too: ``MotoHook`` installs the replacement for one owner, refuses a
second owner, and fails loudly when the moto version no longer has the method (moto is
pinned, and ``tests/e2e/test_local_stack_template.py`` checks the hooks are in use).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class MotoHook:
    def __init__(self, owner_class: type, method: str, replacement: Callable[..., Any], what: str) -> None:
        self._class, self._method, self._replacement, self._what = (owner_class, method, replacement, what)
        self.original: Callable[..., Any] = getattr(owner_class, method)
        self.active: Any = None
        self._lock = threading.Lock()

    def install(self, owner: Any) -> None:
        with self._lock:
            if self.active is not None:
                raise RuntimeError(f"another {self._what} is already installed")
            if not callable(getattr(self._class, self._method, None)):
                raise RuntimeError(f"moto no longer has {self._class.__name__}.{self._method}")
            self.active = owner
            setattr(self._class, self._method, self._replacement)

    def uninstall(self, owner: Any) -> None:
        with self._lock:
            if self.active is owner:
                setattr(self._class, self._method, self.original)
                self.active = None


def install_replacements() -> None:
    """What the local stack changes in moto, for anything else that runs the template on moto
    (the functional tests, the benchmarks) to run the same: transactions that copy items, not
    tables; StopExecution as soon as StartExecution returns; item responses written as JSON;
    queries that read the partition they name, not the whole table; no per-request listing
    of a handler's methods nor scan of a JSON body for an XML tag; no access log line built
    for a logger that drops it."""
    from assay_local import (
        moto_access_log,
        moto_dispatch,
        moto_dynamodb_json,
        moto_executions,
        moto_query,
        moto_transactions,
    )

    moto_transactions.install()
    moto_executions.install()
    moto_dynamodb_json.install()
    moto_query.install()
    moto_dispatch.install()
    moto_access_log.install()
