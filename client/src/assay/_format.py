"""Terminal output: tables, percentages and a hand-rolled progress bar (stderr).

Text from the server (names, record text, reasoning, error messages) never reaches the
terminal raw: ``safe`` shows its control characters as escapes, so a stored name with an
ESC sequence cannot recolour, retitle or rewrite the user's terminal.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from assay.models import EvalRun

# C0 controls, DEL and C1 controls (U+0080-U+009F: a terminal may read U+009B as CSI).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps \t and \n
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def safe(value: object, *, multiline: bool = True) -> str:
    """``value`` as text a terminal may show: every C0 and C1 control character and DEL as
    a visible escape (ESC as ``\\x1b``, CR as ``\\r``), except newline and tab when
    ``multiline`` (one-line contexts, e.g. table cells, escape those too: ``\\n``,
    ``\\t``). Printable text is unchanged, and applying it twice changes nothing more."""
    text = "" if value is None else str(value)
    return (_CONTROLS_BUT_LINES if multiline else _CONTROLS).sub(_escape, text)


def json_text(data: Any) -> str:
    """``data`` as indented JSON for a terminal: ``json.dumps`` escapes C0 controls but
    writes DEL and C1 controls raw (with ``ensure_ascii=False``); those are ``\\u``-escaped
    too. The document still parses to the same data."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> str:
    """A plain-text table; columns listed in ``right`` are right-aligned. Each cell is one
    line, control characters escaped (``safe``)."""
    cells = [[safe(h, multiline=False) for h in headers]] + [
        [safe(c, multiline=False) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    return "\n".join(s.rstrip() for s in out)


class ProgressBar:
    """``[#####.....] 50/100 label`` redrawn in place on a terminal; on a pipe, a line per 10 % step."""

    def __init__(
        self, label: str = "", *, stream: IO[str] | None = None, width: int = 30, unit: str = ""
    ) -> None:
        self.stream = stream or sys.stderr
        self.label, self.width, self.unit = safe(label, multiline=False), width, unit
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_step = -1
        self._last_text = ""
        self._started = time.monotonic()

    def update(self, done: int, total: int, label: str | None = None) -> None:
        if label is not None:
            self.label = safe(label, multiline=False)
        filled = int(self.width * done / total) if total else 0
        text = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{_count(done, self.unit)}/{_count(total, self.unit)} {time.monotonic() - self._started:5.1f}s"
        )
        if self.tty:
            if text != self._last_text:
                self.stream.write("\r" + text)
                self.stream.flush()
        else:
            step = int(10 * done / total) if total else 0
            if step != self._last_step:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._last_step = step
        self._last_text = text

    def close(self) -> None:
        if self.tty and self._last_text:
            self.stream.write("\n")
            self.stream.flush()


def _count(value: int, unit: str) -> str:
    if unit == "B":
        for suffix in ("B", "KB", "MB", "GB"):
            if value < 1024 or suffix == "GB":
                return f"{value:.0f}{suffix}" if suffix == "B" else f"{value:.1f}{suffix}"
            value /= 1024  # type: ignore[assignment]
    return str(value)


def run_summary(run: EvalRun) -> str:
    """The per-metric table, the verdict line and the counts of a run."""
    lines = [
        f"run {run.id}  {run.status}  {run.completed_count} completed, {run.failed_count} failed "
        f"of {run.item_count} records" + (f"  ({run.name})" if run.name else "")
    ]
    if run.error_message:
        lines.append(f"error: {run.error_message}")
    rows = []
    for name, agg in (run.aggregate_results or {}).items():
        rows.append(
            [
                name,
                agg.scorer,
                num(agg.mean),
                pct(agg.pass_rate),
                f"{agg.passed}/{agg.count}",
                num(agg.threshold, 2),
                {True: "ok", False: "below", None: "–"}[agg.is_gte_threshold],
            ]
        )
    if rows:
        lines += [
            "",
            table(
                ["metric", "scorer", "mean", "pass rate", "passed", "threshold", "mean ≥ thr."],
                rows,
                right=(2, 3, 4, 5),
            ),
        ]
    if run.verdict:
        lines += [
            "",
            f"verdict {run.verdict.upper()}: result {num(run.result)} (mean of metric means) vs "
            f"threshold {num(run.threshold, 2)}; records passing every metric {pct(run.pass_rate)}; "
            f"judge cost ${run.total_cost or 0:.4f}",
        ]
    return safe("\n".join(lines))
