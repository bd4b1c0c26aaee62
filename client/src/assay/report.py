"""``assay runs report``: one self-contained HTML page for a run (inline CSS and SVG, no requests).

The run verdict banner (the run level: result vs run threshold), summary figures (result,
pass rate, records, cost: generation, judging, AWS), per metric its own verdict (the metric level: mean vs the
metric's threshold), a histogram of scores (10 bins over [0, 1]) and its pass rate, an
optional comparison with a baseline, the models the run called (calls, tokens and cost per
model and role, the response cache), and the worst records. Both levels are labelled as such
(docs/concepts.md): a run can pass while metrics are below their thresholds, and the page
says so in the banner rather than letting a green PASS sit above red metric cards.
Pure: takes the run, its evaluations and the comparison.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from assay._format import (
    CONCEPTS,
    cache_text,
    describe_generation,
    has_models,
    judge_cost,
    metric_level,
    metrics_below,
    num,
    pct,
    safe,
    signed,
    usd,
)
from assay.models import Comparison, EvalRun, Evaluation

PASS_COLOUR = "#1a7f37"  # noqa: S105 (a colour)
FAIL_COLOUR = "#cf222e"
OTHER_COLOUR = "#6e7781"
BINS = 10
WORST = 25


def banner_colour(run: EvalRun) -> str:
    if run.status != "completed":
        return OTHER_COLOUR
    return {"pass": PASS_COLOUR, "fail": FAIL_COLOUR}.get(run.verdict or "", OTHER_COLOUR)


def _e(value: object) -> str:
    """Text for the page: control characters shown as escapes (``safe``), then HTML-escaped."""
    return html.escape(safe(value), quote=True)


def histogram(
    scores: Sequence[float], threshold: float | None, *, width: int = 340, height: int = 120
) -> str:
    """An inline SVG histogram of scores over [0, 1]; a bin is green when most of its scores pass."""
    counts = [0] * BINS
    passing = [0] * BINS
    for score in scores:
        i = min(BINS - 1, max(0, int(score * BINS)))
        counts[i] += 1
        passing[i] += threshold is None or score >= threshold
    top = max(counts) or 1
    pad_l, pad_b, bar_w = 28, 18, (width - 28) / BINS
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="score histogram">',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width}" y2="{height - pad_b}" stroke="#8c959f"/>',
        f'<text x="{pad_l - 4}" y="12" font-size="10" text-anchor="end" fill="#57606a">{top}</text>',
    ]
    for i, count in enumerate(counts):
        h = (height - pad_b - 14) * count / top
        x = pad_l + i * bar_w + 1
        colour = PASS_COLOUR if 2 * passing[i] >= count else FAIL_COLOUR
        parts.append(
            f'<rect x="{x:.1f}" y="{height - pad_b - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="{colour}" opacity="0.85"><title>{i / BINS:.1f}–{(i + 1) / BINS:.1f}: {count}'
            f"</title></rect>"
        )
    for tick in (0.0, 0.5, 1.0):
        x = pad_l + tick * (width - pad_l)
        anchor = "start" if tick == 0 else ("end" if tick == 1 else "middle")
        parts.append(
            f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="{anchor}" '
            f'fill="#57606a">{tick:.1f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _rate_bar(rate: float | None, width: int = 340) -> str:
    filled = 0 if rate is None else width * rate
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="14" role="img" '
        f'aria-label="pass rate"><rect width="{width}" height="14" rx="3" fill="#eaeef2"/>'
        f'<rect width="{filled:.1f}" height="14" rx="3" fill="{PASS_COLOUR}"/></svg>'
    )


CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
.banner{color:#fff;padding:22px 28px;border-radius:10px;margin-bottom:20px}
.banner h1{margin:0;font-size:30px;letter-spacing:.5px}
.banner p{margin:6px 0 0;font-size:15px;opacity:.95}
.banner .why{font-size:20px;font-weight:500}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:20px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px}
.card .k{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.card .v{font-size:22px;font-weight:600}
h2{font-size:18px;margin:26px 0 10px}
.metrics{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.metric{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px}
.metric h3{margin:0 0 4px;font-size:16px}
.metric .sub{color:#57606a;font-size:12px;margin-bottom:8px}
.ok{color:#1a7f37;font-weight:600}
.bad{color:#cf222e;font-weight:600}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #eaeef2;vertical-align:top;font-size:13px}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,monospace;background:#eaeef2;padding:1px 4px;border-radius:4px}
footer{color:#57606a;font-size:12px;margin:24px 0 8px}
"""


def _output(evaluation: Evaluation) -> object:
    """The answer scored: a generated one in full (``record.generation.output``), else the
    record's ``output``."""
    record = evaluation.record or {}
    generated = record.get("generation")
    if isinstance(generated, dict) and generated.get("output") is not None:
        return generated["output"]
    return record.get("output")


def _models(run: EvalRun) -> list[str]:
    """The models the run called: one row per (role, model), then the response cache; nothing
    for a run without models. Every value escaped (a model id is text the user chose)."""
    if not run.per_model_usage:
        return []
    rows = "".join(
        f"<tr><td>{_e(u.role)}</td><td>{_e(u.provider)}</td><td><code>{_e(u.model)}</code></td>"
        f"<td class=n>{u.invocations or 0:,}</td><td class=n>{u.cached_responses or 0:,}</td>"
        f"<td class=n>{u.prompt_tokens or 0:,}</td><td class=n>{u.completion_tokens or 0:,}</td>"
        f"<td class=n>{_e('no price' if u.cost is None else usd(u.cost))}</td></tr>"
        for u in run.per_model_usage
    )
    out = [
        '<h2 id="models">Models</h2>',
        '<p class="sub">Calls made per model and role (generator: the model under test; judge: '
        "LLM judges); cached: answers reused from the response cache, at no cost. Cost in USD.</p>",
        "<table><tr><th>role</th><th>provider</th><th>model</th><th>calls</th><th>cached</th>"
        f"<th>prompt tokens</th><th>completion tokens</th><th>cost</th></tr>{rows}</table>",
    ]
    cache = cache_text(run)
    if cache:
        out.append(f"<p>{_e(cache)}</p>")
    return out


def render(
    run: EvalRun,
    evaluations: Sequence[Evaluation],
    *,
    comparison: Comparison | None = None,
    title: str | None = None,
    worst: int = WORST,
) -> str:
    colour = banner_colour(run)
    below = metrics_below(run)
    if run.status == "completed" and run.verdict:
        headline = f"Run verdict: {run.verdict.upper()}"
        why = (
            f"(result {num(run.result)} {'≥' if run.verdict == 'pass' else '<'} run threshold "
            f"{num(run.threshold, 2)})"
        )
        detail = f"result = mean of the metric means · records passing every metric {pct(run.pass_rate)}"
    elif run.status == "completed":
        headline, why = "No run verdict", ""
        detail = run.error_message or "no metric could be scored"
    else:
        headline, why = f"Run {run.status.upper() or 'UNKNOWN'}", ""
        detail = run.error_message or "the run has no verdict"
    # The metric level, in the banner too: a green run verdict must not read as "every metric passed".
    metric_note = (
        f"Metric level: {len(below)} of {len(run.aggregate_results or {})} metric means below their "
        f"own thresholds ({', '.join(below)}) — judged separately from the run verdict, see Metrics"
        if below
        else ""
    )
    name = title or run.name or f"Eval run {run.id}"
    cards = [
        ("Result (0–1)", num(run.result)),
        ("Run threshold", num(run.threshold, 2)),
        ("Records passing every metric", pct(run.pass_rate)),
        ("Records", f"{run.item_count}"),
        ("Records with unscored evaluations", f"{run.failed_count}"),
        ("Judge cost", judge_cost(run)),
    ]
    cost = run.cost_breakdown if has_models(run) else None
    if cost is not None:
        cards.insert(-1, ("Generation cost", usd(cost.generation)))
    if run.estimated_aws_cost is not None:
        cards.append(("AWS cost (est.)", f"${run.estimated_aws_cost:.4f}"))
    if cost is not None:
        cards.append(("Total cost", usd(cost.total)))
    body = [
        f'<div class="banner" id="verdict" style="background:{colour}"><h1>{_e(headline)}'
        + (f' <span class="why">{_e(why)}</span>' if why else "")
        + "</h1>"
        + f"<p>{_e(name)} — {_e(detail)}</p>"
        + (
            f'<p id="model-under-test">Model under test: {_e(describe_generation(run.generation))}</p>'
            if run.generation
            else ""
        )
        + (f'<p id="metric-level">{_e(metric_note)}</p>' if metric_note else "")
        + "</div>",
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>'
            for k, v in cards
        )
        + "</div>",
        "<h2>Metrics</h2>",
        '<p class="sub">Metric level: each metric\'s mean against its own threshold, independent of '
        f"the run verdict. Scores, means and thresholds on a 0–1 scale. Definitions: {CONCEPTS}.</p>",
        '<div class="metrics">',
    ]
    for metric, agg in (run.aggregate_results or {}).items():
        scores = [e.score for e in evaluations if e.metric_name == metric and e.score is not None]
        css = "ok" if agg.is_gte_threshold else ("bad" if agg.is_gte_threshold is False else "")
        state = f'<span class="{css}">{_e(metric_level(agg))}</span>' if css else _e(metric_level(agg))
        unscored = agg.unscored or 0
        body.append(
            f'<section class="metric"><h3>{_e(metric)}</h3><div class="sub">{_e(agg.scorer)} · '
            f"{_e(agg.evaluator_type)}</div>"
            f'<div class="level">Metric level: {state}</div>'
            f"<div>pass rate <b>{pct(agg.pass_rate)}</b> ({agg.passed} of {agg.evaluations} "
            "evaluations ≥ metric threshold"
            + (f"; {unscored} could not be scored" if unscored else "; all scored")
            + f")</div>{_rate_bar(agg.pass_rate)}"
            f'<div class="sub" style="margin-top:8px">score distribution ({len(scores)} scored)</div>'
            f"{histogram(scores, agg.threshold)}</section>"
        )
    body.append("</div>")
    if comparison is not None:
        body.append(
            f"<h2>Against baseline <code>{_e(comparison.baseline_run_id)}</code>: "
            f"{_e(comparison.verdict)}</h2>"
        )
        body.append(
            f"<p>{_e(comparison.method)}, {pct(comparison.confidence_level, 0)} confidence · "
            f"{len(comparison.regressions)} regressed, {len(comparison.improvements)} improved records</p>"
        )
        rows = "".join(
            f"<tr><td>{_e(m.metric_name)}</td><td class=n>{num(m.baseline.mean if m.baseline else None)}</td>"
            f"<td class=n>{num(m.run.mean if m.run else None)}</td><td class=n>{signed(m.mean_delta)}</td>"
            f"<td class=n>{num(m.ci_low)} … {num(m.ci_high)}</td><td class=n>{num(m.p_value, 4)}</td>"
            f"<td>{'yes' if m.significant else 'no'}</td></tr>"
            for m in comparison.metrics
        )
        body.append(
            "<table><tr><th>metric</th><th>baseline mean</th><th>run mean</th><th>Δ mean</th>"
            f"<th>CI</th><th>p</th><th>significant</th></tr>{rows}</table>"
        )
    body += _models(run)
    ranked = sorted(
        (e for e in evaluations if not e.is_passed),
        key=lambda e: (e.score if e.score is not None else -1.0, e.record_index or 0),
    )[:worst]
    body.append(
        f"<h2>Worst records ({len(ranked)} of {sum(1 for e in evaluations if not e.is_passed)} "
        "failing evaluations)</h2>"
    )
    if ranked:
        rows = "".join(
            f"<tr><td><code>{_e(e.record_id)}</code></td><td>{_e(e.metric_name)}</td>"
            f"<td class=n>{num(e.score)}</td><td>{_e((e.record or {}).get('input'))}</td>"
            f"<td>{_e(_output(e))}</td>"
            f"<td>{_e((e.record or {}).get('golden_answer'))}</td>"
            f"<td>{_e(e.reasoning or e.error_message)}</td></tr>"
            for e in ranked
        )
        body.append(
            "<table><tr><th>record</th><th>metric</th><th>score</th><th>input</th><th>output</th>"
            f"<th>golden answer</th><th>why</th></tr>{rows}</table>"
        )
    else:
        body.append("<p>Every evaluation passed.</p>")
    body.append(
        f"<footer>Assay · run <code>{_e(run.id)}</code> · dataset <code>{_e(run.dataset_id)}</code> "
        f"v{_e(run.dataset_version)} · eval version <code>{_e(run.eval_version_id)}</code> · "
        f"completed {_e(run.completed_at)}</footer>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(name)} — {_e(headline)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
