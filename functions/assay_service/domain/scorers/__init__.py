"""The scorer catalogue: each scorer is a pure function of (record, validated args)."""

from assay_service.domain.scorers import judges as _judges  # noqa: F401  (LLM judges)
from assay_service.domain.scorers import model_graders as _model_graders  # noqa: F401  (OpenAI's model graders)
from assay_service.domain.scorers import openai_graders as _openai_graders  # noqa: F401  (OpenAI's rule graders)
from assay_service.domain.scorers import rules as _rules  # noqa: F401  (registers the rule scorers)
from assay_service.domain.scorers import similarity as _similarity  # noqa: F401  (graded text scorers)
from assay_service.domain.scorers.base import (
    ScoreResult,
    ScorerSpec,
    describe_requires,
    get_scorer,
    required_fields,
    scorer_names,
    validate_args,
)

__all__ = [
    "ScoreResult",
    "ScorerSpec",
    "describe_requires",
    "get_scorer",
    "required_fields",
    "scorer_names",
    "validate_args",
]
