"""OpenAI Evals' rule graders as Assay scorers: ``string_check`` and ``text_similarity``.

Both compare two texts rendered from OpenAI templates (:mod:`openai_templates`):
``input`` (usually ``{{sample.output_text}}``, the record's output) and ``reference``
(usually ``{{item.<key>}}``, a key of the OpenAI item kept in ``metadata["item"]``). The
templates are checked when the eval version is created; a placeholder the record does not
have fails that evaluation, naming it. They read no ``field``/``reference_field`` (passing
one is refused) and declare no required record field (``requires=()``): what they read is
what their templates name.

``string_check`` (score 1 or 0), as OpenAI's graders guide
(https://platform.openai.com/docs/guides/graders, "String check grader") defines its
operations: ``eq`` — "input matches the reference (case-sensitive)"; ``ne`` — "does not
match (case-sensitive)"; ``like`` — "input contains the reference (case-sensitive)";
``ilike`` — "input contains the reference (not case-sensitive)". So ``like`` is a substring
test, not SQL's ``LIKE`` pattern (``%``/``_`` are literal), and ``ilike`` compares
``str.lower()`` forms. An empty reference is contained in every input.

``text_similarity`` (score in [0, 1]; pass/fail is the metric's ``threshold``, onto which a
caller maps OpenAI's ``pass_threshold``). The guide names only ``rapidfuzz`` for
``fuzzy_match`` and "the rouge python library" for ROUGE; its Python-grader image ships
rapidfuzz, rouge-score 0.1.2 and nltk. The references, each equal within 1e-9
(tests/parity/test_parity_openai_graders.py):

- ``fuzzy_match`` — ``rapidfuzz.fuzz.ratio(input, reference) / 100`` (normalized Indel
  similarity), rapidfuzz itself. The guide does not say which rapidfuzz scorer; ``WRatio``
  was rejected: its partial-ratio stage takes ~20 s on a 10,000- vs 30,000-character pair.
- ``bleu`` — ``sacrebleu.sentence_bleu(input, [reference]).score / 100`` (the ``bleu``
  scorer's code).
- ``gleu`` — ``nltk.translate.gleu_score.sentence_gleu`` on ``13a`` tokens;
- ``meteor`` — ``nltk.translate.meteor_score.meteor_score`` on ``13a`` tokens, exact and
  Porter-stem alignment, **without WordNet synonyms** (:mod:`gleu_meteor` says why: NLTK
  and its data are not in the Lambda, so these two are hand-written);
- ``rouge_1`` … ``rouge_5``, ``rouge_l`` — rouge-score's
  ``RougeScorer(["rouge1"…"rouge5", "rougeL"]).score(reference, input)`` F-measure, no
  stemming (the ``rouge`` scorer's code, which takes any n).

``text_similarity`` refuses ``cosine``: it is a rule scorer, and cosine needs an embeddings
model. ``cosine_similarity`` (an ``llm`` scorer, below) is OpenAI's ``text_similarity`` with
``evaluation_metric: "cosine"`` — the OpenAI-compatible API maps that grader onto it: the
cosine of the two texts' embeddings, asked through the batch's judge runtime (``ModelCalls``
in a run: the provider's limits, retries, usage), from the eval version's judge provider's
embeddings model (``embedding_model_for``) unless the metric names its own ``model``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from assay_service.domain import openai_templates
from assay_service.domain.pricing import cost_usd
from assay_service.domain.scorers import judges
from assay_service.domain.scorers import textmetrics as tm
from assay_service.domain.scorers.base import ScorerArgs, ScoreResult, scorer
from assay_service.domain.scorers.gleu_meteor import gleu, meteor
from assay_service.domain.scorers.similarity import similarity_label, unit_score
from assay_service.errors import InvalidRecordError

# A template is an argument of the eval, like a judge's criteria (10,000 characters).
MAX_TEMPLATE_CHARS = 10_000
# A rendered text is at most what one record field holds (models.domain.RecordText): a
# template repeating a long placeholder cannot make the metrics work on more.
MAX_RENDERED_CHARS = 100_000


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OpenAITemplateArgs(ScorerArgs):
    """``input`` and ``reference``: OpenAI templates (``{{item.…}}``, ``{{sample.…}}``)."""

    input: str = Field(max_length=MAX_TEMPLATE_CHARS)
    reference: str = Field(max_length=MAX_TEMPLATE_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _no_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            given = [name for name in ("field", "reference_field") if name in data]
            if given:
                raise ValueError(
                    f"{given[0]!r} does not apply: this grader reads what its 'input' and "
                    "'reference' templates name ({{sample.output_text}}, {{item.<key>}})"
                )
        return data

    @field_validator("input", "reference")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        openai_templates.check(value)  # ValueError naming the placeholder
        return value

    def texts(self, record: Mapping[str, Any]) -> tuple[str, str]:
        return _render(self.input, record, "input"), _render(self.reference, record, "reference")


def _render(template: str, record: Mapping[str, Any], arg: str) -> str:
    """``openai_templates.render``, refusing a result longer than a record field."""
    parts: list[str] = []
    size = 0
    end = 0
    for m in openai_templates.PLACEHOLDER.finditer(template):
        try:
            value = openai_templates.as_text(openai_templates.lookup(m.group(1), record))
        except InvalidRecordError as exc:
            raise InvalidRecordError(f"{arg}: {exc}") from None
        parts += (template[end : m.start()], value)
        size += m.start() - end + len(value)
        end = m.end()
        if size + len(template) - end > MAX_RENDERED_CHARS:
            raise InvalidRecordError(
                f"{arg}: the rendered template is longer than {MAX_RENDERED_CHARS:,} characters"
            )
    parts.append(template[end:])
    return "".join(parts)


# ------------------------------------------------------------------ string_check
class StringCheckArgs(OpenAITemplateArgs):
    operation: Literal["eq", "ne", "like", "ilike"]


def string_check_holds(operation: str, text: str, reference: str) -> bool:
    """OpenAI's four operations (see the module's docstring)."""
    if operation == "eq":
        return text == reference
    if operation == "ne":
        return text != reference
    if operation == "like":
        return reference in text
    return reference.lower() in text.lower()  # ilike


_CHECK_WORDS = {
    "eq": ("equals", "does not equal"),
    "ne": ("differs from", "equals"),
    "like": ("contains", "does not contain"),
    "ilike": ("contains (ignoring case)", "does not contain (ignoring case)"),
}


@scorer("string_check", StringCheckArgs, requires=())
def string_check(record: Mapping[str, Any], args: StringCheckArgs) -> ScoreResult:
    """OpenAI's string_check: 1 when input eq / ne / like (contains) / ilike the reference."""
    text, reference = args.texts(record)
    ok = string_check_holds(args.operation, text, reference)
    verb = _CHECK_WORDS[args.operation][0 if ok else 1]
    return ScoreResult(
        1.0 if ok else 0.0,
        "pass" if ok else "fail",
        f"input {_excerpt(text)!r} {verb} reference {_excerpt(reference)!r}",
    )


# ------------------------------------------------------------------ text_similarity
EvaluationMetric = Literal[
    "fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"
]


class TextSimilarityArgs(OpenAITemplateArgs):
    evaluation_metric: EvaluationMetric

    @field_validator("evaluation_metric", mode="before")
    @classmethod
    def _not_cosine(cls, value: Any) -> Any:
        if value == "cosine":
            raise ValueError(
                "cosine needs an embeddings model; not available as a rule scorer (use the "
                "cosine_similarity scorer, which asks the judge provider's embeddings model)"
            )
        return value


def metric_value(metric: str, text: str, reference: str) -> tuple[float, str]:
    """(the metric of ``text`` against ``reference`` in [0, 1], how it came about)."""
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz  # deferred, as for levenshtein: only scoring needs it

        score = fuzz.ratio(text, reference) / 100
        return score, f"fuzzy_match {score:.3f} (rapidfuzz ratio over {len(text)} and {len(reference)} chars)"
    if metric == "bleu":
        b = tm.bleu(text, reference)
        p1, p2, p3, p4 = b.precisions
        return b.score, (
            f"BLEU {unit_score(b.score):.3f}: n-gram precisions {p1:.1f}/{p2:.1f}/{p3:.1f}/{p4:.1f}, "
            f"brevity penalty {b.bp:.3f} ({b.sys_len} vs {b.ref_len} tokens)"
        )
    if metric == "gleu":
        g = gleu(text, reference)
        return g.score, (
            f"GLEU {g.score:.3f}: {g.matches} shared 1-4-grams of {g.hyp_ngrams} in input, "
            f"{g.ref_ngrams} in reference"
        )
    if metric == "meteor":
        m = meteor(text, reference)
        return m.score, (
            f"METEOR {m.score:.3f}: {m.exact + m.stemmed} of {m.hyp_len} input / {m.ref_len} reference "
            f"tokens aligned ({m.exact} exact, {m.stemmed} by stem; no synonyms), "
            f"in {m.chunks} chunk{'' if m.chunks == 1 else 's'}"
        )
    variant = "rougeL" if metric == "rouge_l" else "rouge" + metric.removeprefix("rouge_")
    prf = tm.rouge(reference, text, variant)
    return prf.fmeasure, (
        f"{variant} F={unit_score(prf.fmeasure):.3f} (precision {prf.precision:.3f}, recall {prf.recall:.3f})"
    )


@scorer("text_similarity", TextSimilarityArgs, requires=())
def text_similarity(record: Mapping[str, Any], args: TextSimilarityArgs) -> ScoreResult:
    """OpenAI's text_similarity: fuzzy_match, BLEU, GLEU, METEOR or ROUGE-1..5/L in [0, 1]."""
    text, reference = args.texts(record)
    raw, reasoning = metric_value(args.evaluation_metric, text, reference)
    score = unit_score(raw)
    return ScoreResult(score, similarity_label(score), reasoning)


# ------------------------------------------------------------------ cosine_similarity
# The embeddings model a provider is asked when neither the metric nor the deployment
# (EMBEDDING_MODEL) names one for it.
DEFAULT_EMBEDDING_MODELS = {"openai": "text-embedding-3-small", "bedrock": "amazon.titan-embed-text-v2:0"}
# Bedrock's text embeddings models are Amazon's (Titan) and Cohere's.
_BEDROCK_EMBEDDING = re.compile(r"^(?:(?:us|eu|apac|global|us-gov)\.)?(?:amazon|cohere)\.")


def embedding_model_for(provider: str, configured: str | None = None) -> str:
    """The deployment's embeddings model for ``provider``: ``configured`` (the
    ``EmbeddingModel`` template parameter) when it is that provider's — a Bedrock model id
    (``amazon.…``, ``cohere.…``) is Bedrock's, any other name the OpenAI-compatible
    endpoint's — else the provider's default (``DEFAULT_EMBEDDING_MODELS``). So the
    template's default, ``amazon.titan-embed-text-v2:0``, leaves OpenAI-compatible calls on
    ``text-embedding-3-small``."""
    name = (configured or "").strip()
    if name and bool(_BEDROCK_EMBEDDING.match(name)) == (provider == "bedrock"):
        return name
    return DEFAULT_EMBEDDING_MODELS.get(provider, DEFAULT_EMBEDDING_MODELS["openai"])


class EmbeddingClient(Protocol):
    """What ``cosine_similarity`` asks of the judge runtime's client (``ModelCalls``)."""

    def embed(self, provider: str, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]: ...


class CosineSimilarityArgs(OpenAITemplateArgs):
    """``input`` and ``reference`` templates; ``model``: the embeddings model, instead of the
    deployment's for the judge provider."""

    model: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(ord(c) < 32 for c in value)):
            raise ValueError("a model id, without blanks only or control characters")
        return value


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of two vectors, as computed (in [-1, 1] up to float noise)."""
    if len(a) != len(b):
        raise ValueError(f"the embeddings differ in length ({len(a)} and {len(b)} dimensions)")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        raise ValueError("an embedding is all zeros: its cosine is undefined")
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm


@scorer("cosine_similarity", CosineSimilarityArgs, evaluator_type="llm", requires=())
def cosine_similarity(record: Mapping[str, Any], args: CosineSimilarityArgs) -> ScoreResult:
    """OpenAI's text_similarity with cosine: the cosine of the two texts' embeddings."""
    text, reference = args.texts(record)
    for arg, value in (("input", text), ("reference", reference)):
        if not value.strip():
            raise InvalidRecordError(f"{arg}: the template rendered an empty text, which has no embedding")
    runtime = judges._RUNTIME
    if runtime is None:
        raise judges.JudgeNotConfiguredError("no judge is configured for this run")
    embed = getattr(runtime.client, "embed", None)  # EmbeddingClient: ModelCalls in a run
    if embed is None:
        raise judges.JudgeNotConfiguredError("the judge client cannot compute embeddings")
    provider = runtime.settings.provider
    model = args.model
    if model is None:
        configured = getattr(runtime.client, "embedding_model", None)
        model = configured(provider) if configured is not None else embedding_model_for(provider)
    vectors, tokens = embed(provider, model, [text, reference])
    if len(vectors) != 2:
        raise ValueError(f"{model} returned {len(vectors)} embeddings for 2 texts")
    raw = cosine(vectors[0], vectors[1])
    # Float noise aside (identical texts: 0.9999999999999998), clamped to the 0-1 every
    # metric's score is on; the cosine itself is kept in the metadata.
    score = unit_score(round(raw, 12))
    return ScoreResult(
        score=score,
        label=similarity_label(score),
        reasoning=(
            f"cosine {raw:.4f} of {model}'s embeddings ({len(vectors[0])} dimensions) of input "
            f"({len(text)} chars) and reference ({len(reference)} chars)"
        ),
        metadata={
            "model": model,
            "provider": provider,
            "input_tokens": tokens,
            "output_tokens": 0 if tokens is not None else None,
            "cosine": raw,
            "dimensions": len(vectors[0]),
        },
        cost=cost_usd(model, tokens, 0, runtime.prices) if tokens is not None else None,
    )


# ------------------------------------------------------------------ imported history
class RecordedArgs(ScorerArgs):
    """``key``: which of the record's ``metadata.recorded`` results this metric replays."""

    key: str = Field(min_length=1, max_length=200)


@scorer("recorded", RecordedArgs, requires=())
def recorded(record: Mapping[str, Any], args: RecordedArgs) -> ScoreResult:
    """A result scored elsewhere and kept with the record (``metadata.recorded[key]``:
    ``score``, ``passed``, optional ``reasoning``), replayed as it was — how runs imported
    from OpenAI Evals keep their history (docs/openai-evals.md)."""
    entry = ((record.get("metadata") or {}).get("recorded") or {}).get(args.key)
    if not isinstance(entry, Mapping):
        raise InvalidRecordError(f"the record has no recorded result {args.key!r}")
    score, passed = entry.get("score"), entry.get("passed")
    if isinstance(score, bool) or not isinstance(score, int | float) or not isinstance(passed, bool):
        raise InvalidRecordError(
            f"recorded result {args.key!r}: needs a numeric 'score' and a boolean 'passed'"
        )
    reasoning = entry.get("reasoning")
    return ScoreResult(
        score=float(score),
        label="pass" if passed else "fail",
        reasoning=reasoning if isinstance(reasoning, str) and reasoning else "recorded result",
        passed=passed,
    )
