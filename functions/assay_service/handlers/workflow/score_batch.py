"""ScoreBatchFunction: one Distributed Map child = one batch of records."""

from assay_service.domain.scorers import textmetrics
from assay_service.handlers.workflow.steps import step
from assay_service.models.workflow import ScoreBatchInput
from assay_service.services import workflow

# Every line it logs says which text metrics run: "native" is the C extension, "python" its
# slower fallback (decision 0009).
handler = step(ScoreBatchInput, workflow.score, log_keys={"text_metrics": textmetrics.implementation()})
