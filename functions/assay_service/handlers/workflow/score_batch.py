"""ScoreBatchFunction: one Distributed Map child = one batch of records."""

from assay_service.domain.scorers import textmetrics
from assay_service.handlers.workflow.steps import step
from assay_service.models.workflow import ScoreBatchInput
from assay_service.observability import get_logger
from assay_service.services import workflow

handler = step(ScoreBatchInput, workflow.score)

# Once a cold start: "native" is the C extension, "python" its slower fallback (decision 0009).
get_logger().info("text metrics loaded", extra={"implementation": textmetrics.implementation()})
