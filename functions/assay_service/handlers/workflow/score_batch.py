"""ScoreBatchFunction: one Distributed Map child = one batch of records."""

from assay_service.handlers.workflow.steps import step
from assay_service.models.workflow import ScoreBatchInput
from assay_service.services import workflow

handler = step(ScoreBatchInput, workflow.score)
