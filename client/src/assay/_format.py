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

from assay.models import EvalRun, MetricAggregate, ModelUsage

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


def clip(value: object, width: int) -> str:
    """``value`` as one line of at most ``width`` characters: longer text is cut and ends with
    "…", so a reader can tell a truncated cell (reasoning, record text) from a complete one."""
    text = safe(value, multiline=False)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


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


# One verdict story on every surface (docs/concepts.md): the *run level* (``verdict``:
# result = mean of the metric means vs the run threshold) and the *metric level* (each
# metric's mean vs its own threshold) are different questions, and a run can pass with
# metrics below theirs. Every surface names the level it shows, in the words below, so
# the terminal, the report, the gate and JUnit never seem to contradict each other.
# Scores, means, results and thresholds are on the 0–1 scale; rates carry a % sign.
# Where the definitions are; a bare path means little once the client is pip-installed alone.
CONCEPTS = "docs/concepts.md in the Assay repository"


def run_verdict(run: EvalRun) -> str:
    """``run verdict pass (result 0.738 ≥ run threshold 0.70)``; says why there is none."""
    if run.verdict in ("pass", "fail"):
        op = "≥" if run.verdict == "pass" else "<"
        return (
            f"run verdict {run.verdict} (result {num(run.result)} {op} run threshold {num(run.threshold, 2)})"
        )
    why = "no metric could be scored" if run.status == "completed" else f"the run is {run.status}"
    return f"no run verdict ({why})"


def metric_level(agg: MetricAggregate) -> str:
    """``metric mean 0.410 < metric threshold 0.50``: the metric level, always labelled so."""
    if agg.mean is None:
        return f"metric mean – (nothing scored), metric threshold {num(agg.threshold, 2)}"
    below = agg.is_gte_threshold is False or (
        agg.is_gte_threshold is None and agg.threshold is not None and agg.mean < agg.threshold
    )
    return f"metric mean {num(agg.mean)} {'<' if below else '≥'} metric threshold {num(agg.threshold, 2)}"


def metrics_below(run: EvalRun) -> list[str]:
    """The metrics whose mean is below their own threshold (the metric level)."""
    return [name for name, agg in (run.aggregate_results or {}).items() if agg.is_gte_threshold is False]


def record_counts(run: EvalRun) -> str:
    """``120 records: 118 fully scored, 2 with evaluations that could not be scored``
    (``completed_count`` / ``failed_count``: neither says anything about thresholds)."""
    return (
        f"{run.item_count} records: {run.completed_count} fully scored, {run.failed_count} "
        "with evaluations that could not be scored"
    )


# ---------------------------------------------------------------------------- models and cost
# Runs that call models (an LLM judge, or a model under test: docs/generation.md) carry
# ``per_model_usage`` and ``cost_breakdown`` once completed; runs without models show nothing more.
def usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4f}"


def describe_generation(block: dict[str, Any] | None) -> str:
    """``openai gpt-4o-mini (temperature 0, max_tokens 64, seed 7)``: the model under test."""
    if not block:
        return ""
    settings = [
        f"{key} {block[key]:g}" if isinstance(block[key], float) else f"{key} {block[key]}"
        for key in ("temperature", "top_p", "max_tokens", "seed")
        if block.get(key) is not None
    ]
    name = f"{block.get('provider') or 'bedrock'} {block.get('model') or '?'}"
    return name + (f" ({', '.join(settings)})" if settings else "")


def has_models(run: EvalRun) -> bool:
    """Whether the run called models: a model under test, or usage recorded for any model."""
    return bool(run.generation) or bool(run.per_model_usage)


def usage_table(usage: Sequence[ModelUsage]) -> str:
    """One row per (role, model): calls, cached answers, tokens and cost."""
    rows = [
        [
            u.role,
            f"{u.provider}/{u.model}" if u.provider else u.model,
            f"{u.invocations or 0:,}",
            f"{u.cached_responses or 0:,}",
            f"{u.prompt_tokens or 0:,}",
            f"{u.completion_tokens or 0:,}",
            "no price" if u.cost is None else usd(u.cost),
        ]
        for u in usage
    ]
    return table(
        ["role", "model", "calls", "cached", "prompt tokens", "completion tokens", "cost"],
        rows,
        right=(2, 3, 4, 5, 6),
    )


def cost_text(run: EvalRun) -> str:
    """``generation $0.0123 + judging $0.0456 + infrastructure $0.0001 (est.) = total $0.0580``."""
    cost = run.cost_breakdown
    if cost is None:
        return ""
    infra = f" + infrastructure {usd(cost.infrastructure)} (est.)" if cost.infrastructure is not None else ""
    return f"generation {usd(cost.generation)} + judging {usd(cost.judging)}{infra} = total {usd(cost.total)}"


def cache_text(run: EvalRun) -> str:
    """``response cache: 12 hits, 3 misses`` (``, off for this run`` when scheduled without it)."""
    hits, misses = run.cache_hits or 0, run.cache_misses or 0
    if not (hits or misses or run.cache is False):
        return ""
    return f"response cache: {hits:,} hits, {misses:,} misses" + (
        " (off for this run: --no-cache)" if run.cache is False else ""
    )


def judge_cost(run: EvalRun) -> str:
    """What the LLM judges cost, as ``usd``: ``cost_breakdown.judging`` when the run has one
    (``–`` when a judge model has no price), else ``total_cost`` (which was only the judges'
    before runs could generate)."""
    return usd(run.cost_breakdown.judging if run.cost_breakdown is not None else (run.total_cost or 0.0))


def models_section(run: EvalRun) -> list[str]:
    """The lines about the run's models for ``run_summary``; none for a run without models."""
    if not has_models(run):
        return []
    lines = []
    if run.per_model_usage:
        lines += [
            "",
            "models (calls made; cached: answers reused from the response cache; cost in USD):",
            usage_table(run.per_model_usage),
        ]
    extra = [line for line in (cache_text(run), cost_text(run) and f"cost: {cost_text(run)}") if line]
    if extra:
        lines += ["", *extra]
    return lines


def run_summary(run: EvalRun) -> str:
    """The counts, the per-metric table (metric level) and the run verdict (run level)."""
    lines = [f"run {run.id}  {run.status}" + (f"  ({run.name})" if run.name else ""), record_counts(run)]
    if run.generation:
        lines.append(f"model under test: {describe_generation(run.generation)}")
    if run.error_message:
        lines.append(f"error: {run.error_message}")
    rows = []
    for name, agg in (run.aggregate_results or {}).items():
        rows.append(
            [
                name,
                agg.scorer,
                num(agg.mean),
                num(agg.threshold, 2),
                {True: "ok", False: "BELOW", None: "–"}[agg.is_gte_threshold],
                pct(agg.pass_rate),
                f"{agg.passed}/{agg.evaluations}",
                agg.unscored if agg.unscored is not None else "–",
            ]
        )
    if rows:
        lines += [
            "",
            "metric level (each metric's mean vs its own threshold; scores 0–1, rates in %):",
            table(
                ["metric", "scorer", "mean", "metric thr.", "mean ≥ thr.", "pass rate", "passed", "unscored"],
                rows,
                right=(2, 3, 5, 6, 7),
            ),
        ]
    if run.verdict:
        below = metrics_below(run)
        lines += [
            "",
            f"run verdict {run.verdict.upper()}: result {num(run.result)} (mean of the metric means) "
            f"{'≥' if run.verdict == 'pass' else '<'} run threshold {num(run.threshold, 2)}",
            f"metric level: {len(below)} of {len(run.aggregate_results or {})} metric means below "
            "their own thresholds"
            + (f" ({', '.join(below)})" if below else "")
            + (" — not part of the run verdict; `assay ci` gates on them by default" if below else ""),
            f"records passing every metric {pct(run.pass_rate)}; judge cost {judge_cost(run)}"
            + (
                f"; generation cost {usd(run.cost_breakdown.generation)}"
                if run.generation and run.cost_breakdown
                else ""
            ),
            f"definitions: {CONCEPTS}",
        ]
    elif run.status == "completed":
        lines += ["", f"{run_verdict(run)}; definitions: {CONCEPTS}"]
    lines += models_section(run)
    return safe("\n".join(lines))
