"""One replaced moto method, owned by one object at a time.

The local stack reaches into moto where it has no public extension point (its Lambda
invocation, the end of a Step Functions execution). moto's backends are process-global, so
each such patch is too: ``MotoHook`` installs the replacement for one owner, refuses a
second owner, and fails loudly when the moto version no longer has the method (moto is
pinned, and ``tests/e2e/test_local_stack_template.py`` checks the hooks are in use).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
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


@dataclass(frozen=True)
class Replacement:
    """A function of moto (or of the werkzeug server under it) replaced in this process for
    good, owned by nobody: installing it twice is installing it once. Fails loudly when the
    pinned version no longer has the function."""

    owner: Any  # the class or module that holds it
    name: str
    new: Any  # what takes its place (a staticmethod stays one)

    def install(self) -> None:
        label = getattr(self.owner, "__qualname__", None) or self.owner.__name__
        if not callable(getattr(self.owner, self.name, None)):
            raise RuntimeError(f"{label} no longer has {self.name}")
        setattr(self.owner, self.name, self.new)

    def installed(self) -> bool:
        return inspect.getattr_static(self.owner, self.name, None) is self.new


def install(module: ModuleType) -> None:
    """Every ``Replacement`` a ``moto_*`` module lists in its ``REPLACEMENTS``."""
    for replacement in module.REPLACEMENTS:
        replacement.install()


def installed(module: ModuleType) -> bool:
    return all(replacement.installed() for replacement in module.REPLACEMENTS)


def install_replacements() -> None:
    """What the local stack changes in moto, for anything else that runs the template on moto
    (the functional tests, the benchmarks) to run the same: transactions that copy items, not
    tables; StopExecution as soon as StartExecution returns; item responses written as JSON;
    queries that read the partition they name, not the whole table; no per-request listing
    of a handler's methods nor scan of a JSON body for an XML tag; no access log line built
    for a logger that drops it."""
    for module in replaced_modules():
        install(module)


def replaced_modules() -> tuple[ModuleType, ...]:
    from assay_local import (
        moto_access_log,
        moto_dispatch,
        moto_dynamodb_json,
        moto_executions,
        moto_query,
        moto_transactions,
    )

    return (
        moto_transactions,
        moto_executions,
        moto_dynamodb_json,
        moto_query,
        moto_dispatch,
        moto_access_log,
    )
