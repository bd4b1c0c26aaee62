"""The ``assay`` command's exit codes, in one place: the CLI returns them and the CI gate's
result (``assay.gate.GateResult.exit_code``) is one of them. docs/cli.md and every command's
help (``assay.cli.parser.EPILOG``) list the same codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """success (for ``assay ci``: the gate passed)"""
    GATE_FAILED = 1
    """``assay ci``: the gate failed (a metric below its threshold, or a significant regression)"""
    ERROR = 2
    """bad arguments or files, an API error, the service unreachable, a run that ended
    failed/cancelled while waiting, a port in use (``assay local up``)"""
    TIMEOUT = 3
    """the run did not finish within --timeout; ``assay health --wait``: not ready in time"""
    INTERRUPTED = 130
    """interrupted (Ctrl-C)"""
