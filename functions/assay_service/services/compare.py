"""Compare a finished run with a baseline run of the same tenant."""

from __future__ import annotations

from uuid import UUID

from assay_service.dependencies import DEPLOYED
from assay_service.domain.compare import Comparison, Scored, compare_runs
from assay_service.errors import ConflictError
from assay_service.models.domain import Principal, Run
from assay_service.ports import Ports
from assay_service.services.runs import get_run


def _scores(run: Run, *, ports: Ports) -> dict[str, dict[str, Scored]]:
    """metric name → record id → (score, passed), streamed from the run's batches."""
    out: dict[str, dict[str, Scored]] = {m.name: {} for m in run.metrics}
    for batch in ports.runs.iter_batches(run):
        for raw in batch["evaluations"]:
            score = raw["score"] if raw["status"] == "complete" else None
            out.setdefault(raw["metric_name"], {})[raw["record_id"]] = Scored(
                None if score is None else float(score), bool(raw["is_passed"])
            )
    return out


def compare(
    principal: Principal,
    run_id: UUID,
    baseline_id: UUID,
    *,
    confidence: float,
    limit: int,
    ports: Ports = DEPLOYED,
) -> Comparison:
    """404 if either run is missing or another tenant's; 409 unless both have completed."""
    run = get_run(principal, run_id, ports=ports)
    baseline = get_run(principal, baseline_id, ports=ports)
    for which, r in (("run", run), ("baseline", baseline)):
        if r.status != "completed":
            raise ConflictError(
                f"the {which} run is {r.status}; runs compare once completed",
                details={"run_id": str(r.id), "status": r.status},
            )
    order = [m.name for m in run.metrics] + [m.name for m in baseline.metrics]
    return compare_runs(
        _scores(run, ports=ports),
        _scores(baseline, ports=ports),
        run_id=str(run.id),
        baseline_run_id=str(baseline.id),
        confidence=confidence,
        limit=limit,
        metric_order=order,
    )
