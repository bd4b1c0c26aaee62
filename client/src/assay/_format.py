"""Terminal output: tables, percentages and a hand-rolled progress bar (stderr)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from assay.models import EvalRun


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> str:
    """A plain-text table; columns listed in ``right`` are right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
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
        self.label, self.width, self.unit = label, width, unit
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_step = -1
        self._last_text = ""
        self._started = time.monotonic()

    def update(self, done: int, total: int, label: str | None = None) -> None:
        if label is not None:
            self.label = label
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
    return "\n".join(lines)
