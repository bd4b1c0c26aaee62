"""OpenAI Evals' model graders as LLM scorers: ``score_model`` and ``label_model``.

Each carries what an OpenAI grader carries — its own ``model``, its ``input`` messages
(templates over ``{{item.…}}`` and ``{{sample.…}}``, ``openai_templates``) and, for
``score_model``, a ``range`` and ``sampling_params`` — and asks through the judge runtime
of the batch (``judges.JudgeRuntime``): the eval version's ``JudgeSettings`` with the
grader's model and sampling put over them, sent as a whole conversation through the
``JudgeChatClient`` port, so the response cache, the rate limiter's bucket, the usage
meter and the evaluation's cost are the grader's model's.

The model answers one JSON object, ``{"reasoning": …, "result": …}`` (the instruction is
appended to the last user message, so any chat model can follow it); an unparseable reply,
or a score outside ``range``, or a label not among ``labels``, is asked again once, then
the evaluation fails with an excerpt of the reply — as for the other judges.

``score_model``'s score is the model's result normalised to 0–1 over ``range`` (the
metric's threshold is 0–1: the caller maps OpenAI's ``pass_threshold`` with
``normalised_threshold``); the raw result is kept in the evaluation's metadata and label.
``label_model`` scores 1 for a label in ``passing_labels``, else 0, and labels the
evaluation with the model's label.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assay_service.domain import openai_templates
from assay_service.domain.generation import ChatRequest
from assay_service.domain.pricing import cost_usd
from assay_service.domain.scorers import judges
from assay_service.domain.scorers.base import ScorerArgs, ScoreResult, scorer
from assay_service.domain.scorers.judges import (
    EXCERPT,
    JudgeNotConfiguredError,
    JudgeReply,
    UnparseableReplyError,
    _BadReply,
    _reasoning,
    parse_reply,
)
from assay_service.models.domain import JudgeSettings

MAX_MESSAGES = 50
MAX_CONTENT_CHARS = 20_000
MAX_LABELS = 100
# What OpenAI's sampling_params allow; a larger max_tokens than JudgeSettings' own bound
# is passed on as given (reasoning models may need it).
MAX_COMPLETION_TOKENS = 100_000


# ------------------------------------------------------------------ args
class GraderMessage(BaseModel):
    """One of a grader's ``input`` messages; ``content`` is kept as its text (a template)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant", "system", "developer"]
    content: str
    type: Literal["message"] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        text = openai_templates.content_text(value)
        if not text.strip():
            raise ValueError("content is empty")
        if len(text) > MAX_CONTENT_CHARS:
            raise ValueError(f"content is over {MAX_CONTENT_CHARS:,} characters")
        openai_templates.check(text)
        return text


class SamplingParams(BaseModel):
    """OpenAI's ``sampling_params``: ``reasoning_effort`` is accepted and ignored (the
    evaluation's metadata says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
    max_completions_tokens: int | None = Field(default=None, ge=1, le=MAX_COMPLETION_TOKENS)
    reasoning_effort: str | None = Field(default=None, max_length=20)


class ModelGraderArgs(ScorerArgs):
    model: str = Field(min_length=1, max_length=200)
    input: list[GraderMessage] = Field(min_length=1, max_length=MAX_MESSAGES)

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not value.strip() or any(ord(c) < 32 for c in value):
            raise ValueError("a model id, without blanks only or control characters")
        return value


class ScoreModelArgs(ModelGraderArgs):
    range: list[float] = Field(default_factory=lambda: [0.0, 1.0], min_length=2, max_length=2)
    sampling_params: SamplingParams | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ScoreModelArgs:
        low, high = self.range
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("`range` must be two finite numbers [min, max]")
        if not low < high:
            raise ValueError("`range` must be [min, max] with min below max")
        return self


class LabelModelArgs(ModelGraderArgs):
    labels: list[str] = Field(min_length=1, max_length=MAX_LABELS)
    passing_labels: list[str] = Field(min_length=1, max_length=MAX_LABELS)

    @model_validator(mode="after")
    def _subset(self) -> LabelModelArgs:
        folded = [label.strip().lower() for label in self.labels]
        if any(not label for label in folded):
            raise ValueError("`labels` may not hold an empty label")
        if len(set(folded)) != len(folded):
            raise ValueError("`labels` must be distinct (compared without case)")
        unknown = [p for p in self.passing_labels if p not in self.labels]
        if unknown:
            raise ValueError(f"`passing_labels` {unknown} are not in `labels`")
        return self


def normalised_threshold(pass_threshold: float, score_range: Sequence[float] = (0.0, 1.0)) -> float:
    """OpenAI's ``pass_threshold`` (on the grader's ``range``) as the metric's 0–1
    threshold — the same arithmetic as the score's, so ``result ≥ pass_threshold`` exactly
    when ``score ≥ threshold``. Clamped to [0, 1]."""
    low, high = score_range
    return min(1.0, max(0.0, (pass_threshold - low) / (high - low)))


# ------------------------------------------------------------------ the conversation
_SCORE_FORMAT = (
    'Reply with only one JSON object, no prose around it: {{"reasoning": <one or two '
    'sentences>, "result": <your score: one number from {low:g} to {high:g}>}}.'
)
_LABEL_FORMAT = (
    'Reply with only one JSON object, no prose around it: {{"reasoning": <one or two '
    'sentences>, "result": <exactly one of these labels: {labels}>}}.'
)
_RETRY = "Your previous reply could not be used ({problem}). "


def conversation(args: ModelGraderArgs, record: Mapping[str, Any], instruction: str) -> list[tuple[str, str]]:
    """The grader's messages rendered from ``record`` (``{{sample.output_text}}`` is its
    ``field``, ``output`` by default; ``developer`` sent as ``system``;
    consecutive messages of one role joined, which every provider accepts), with
    ``instruction`` appended to the last user message (or as a last user message)."""
    if args.field != "output":  # {{sample.output_text}} is the answer under test: `field`
        record = {**record, "output": record.get(args.field)}
    messages: list[tuple[str, str]] = []
    for message in args.input:
        role = "system" if message.role == "developer" else message.role
        text = openai_templates.render(message.content, record)
        if messages and messages[-1][0] == role:
            messages[-1] = (role, f"{messages[-1][1]}\n\n{text}")
        else:
            messages.append((role, text))
    if messages and messages[-1][0] == "user":
        messages[-1] = ("user", f"{messages[-1][1]}\n\n{instruction}")
    else:
        messages.append(("user", instruction))
    return messages


def _with_instruction(messages: list[tuple[str, str]], extra: str) -> tuple[tuple[str, str], ...]:
    """``messages`` with ``extra`` added at the end of the last (user) message."""
    *head, (role, text) = messages
    return (*head, (role, f"{text}\n\n{extra}"))


def _settings(runtime: judges.JudgeRuntime, model: str, sampling: SamplingParams | None) -> JudgeSettings:
    """The version's judge settings with the grader's model and sampling over them."""
    update: dict[str, Any] = {"model": model}
    if sampling is not None:
        if sampling.temperature is not None:
            update["temperature"] = sampling.temperature
        if sampling.max_completions_tokens is not None:
            update["max_tokens"] = sampling.max_completions_tokens
    return runtime.settings.model_copy(update=update)


def _send(client: Any, request: ChatRequest) -> JudgeReply:
    """A conversation through the ``JudgeChatClient`` port (``ModelCalls`` in a run); a
    bare model client (``chat``) also does."""
    complete_chat = getattr(client, "complete_chat", None)
    if complete_chat is not None:
        reply: JudgeReply = complete_chat(request)
        return reply
    chat = getattr(client, "chat", None)
    if chat is None:
        raise JudgeNotConfiguredError("the judge client cannot send a conversation")
    answer = chat(request)
    return JudgeReply(
        text=answer.text, input_tokens=answer.prompt_tokens, output_tokens=answer.completion_tokens
    )


Interpret = Callable[[str], tuple[float, str, bool | None, dict[str, Any]]]


def _ask(
    messages: list[tuple[str, str]],
    sampling: SamplingParams | None,
    model: str,
    instruction: str,
    interpret: Interpret,
) -> ScoreResult:
    """Ask the grader's model; ``interpret(reply text) -> (score, label, passed, data)``;
    one retry on a reply it cannot use (as ``judges._ask``)."""
    runtime = judges._RUNTIME
    if runtime is None:
        raise JudgeNotConfiguredError("no judge is configured for this run")
    settings = _settings(runtime, model, sampling)
    base = ChatRequest(
        provider=settings.provider,
        model=settings.model,
        messages=tuple(messages),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        top_p=sampling.top_p if sampling else None,
        seed=sampling.seed if sampling else None,
        json_object=True,
    )
    extra: dict[str, Any] = {}
    if sampling is not None and sampling.reasoning_effort is not None:
        extra["ignored"] = ["sampling_params.reasoning_effort"]
    tokens_in = tokens_out = 0
    usage_known = True
    request, problem, reply = base, "", None
    for attempt in range(2):
        reply = _send(runtime.client, request)
        if reply.input_tokens is None or reply.output_tokens is None:
            usage_known = False
        tokens_in += reply.input_tokens or 0
        tokens_out += reply.output_tokens or 0
        try:
            score, label, passed, data = interpret(reply.text)
        except _BadReply as exc:
            problem = str(exc)
            retry = _RETRY.format(problem=problem) + instruction
            request = replace(base, messages=_with_instruction(messages, retry))
            continue
        cost = cost_usd(settings.model, tokens_in, tokens_out, runtime.prices) if usage_known else None
        return ScoreResult(
            score=score,
            label=label,
            reasoning=_reasoning(data) or _steps(data),
            confidence=None,
            metadata=_metadata(settings, tokens_in, tokens_out, usage_known, attempt + 1, extra, data),
            cost=cost,
            passed=passed,
        )
    excerpt = (reply.text if reply else "")[:EXCERPT]
    raise UnparseableReplyError(
        f"judge reply unparseable after a retry ({problem}): {excerpt!r}",
        cost=cost_usd(settings.model, tokens_in, tokens_out, runtime.prices) if usage_known else None,
        metadata=_metadata(settings, tokens_in, tokens_out, usage_known, 2, extra, {}),
    )


def _metadata(
    settings: JudgeSettings,
    tokens_in: int,
    tokens_out: int,
    usage_known: bool,
    attempts: int,
    extra: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    metadata = {
        "model": settings.model,
        "provider": settings.provider,
        "input_tokens": tokens_in if usage_known else None,
        "output_tokens": tokens_out if usage_known else None,
        "attempts": attempts,
        **extra,
    }
    if "result" in data:
        metadata["result"] = data["result"]
    return metadata


def _steps(data: Mapping[str, Any]) -> str:
    """OpenAI's own reply shape, ``steps: [{description, conclusion}]``, as reasoning."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return ""
    texts = []
    for step in steps:
        if isinstance(step, Mapping):
            text = step.get("conclusion") or step.get("description")
            if isinstance(text, str) and text.strip():
                texts.append(text.strip())
        elif isinstance(step, str) and step.strip():
            texts.append(step.strip())
    return " ".join(texts)[: judges.REASONING_CHARS]


# ------------------------------------------------------------------ replies
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def _bare(text: str) -> str:
    """A reply without a code fence, surrounding quotes or a final full stop."""
    return _FENCE.sub("", text.strip()).strip().strip("\"'`").rstrip(".").strip()


def _reply_value(text: str, keys: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """The answer of a reply: the first of ``keys`` in its JSON object, or the whole reply
    when it is a bare value (a number, a label) rather than an object."""
    try:
        data = parse_reply(text)
    except _BadReply:
        bare = _bare(text)
        if bare and "{" not in bare and "\n" not in bare:
            return bare, {}
        raise
    for key in keys:
        if key in data:
            return data[key], data
    raise _BadReply(f"no `{keys[0]}` in the reply")


def score_interpreter(low: float, high: float) -> Interpret:
    """``score_model``'s reply: ``result`` (or ``score``) a number in [low, high]."""

    def interpret(text: str) -> tuple[float, str, bool | None, dict[str, Any]]:
        value, data = _reply_value(text, ("result", "score"))
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _NUMBER.match(value.strip()):
            number = float(value.strip())
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise _BadReply(f"`result` must be one number from {low:g} to {high:g}")
        data = {**data, "result": number}
        return (number - low) / (high - low), f"{number:g}", None, data

    return interpret


def label_interpreter(labels: Sequence[str], passing: Sequence[str]) -> Interpret:
    """``label_model``'s reply: ``result`` (or ``label``) one of ``labels`` (case aside)."""
    by_folded = {label.strip().lower(): label for label in labels}
    passing_set = set(passing)

    def interpret(text: str) -> tuple[float, str, bool | None, dict[str, Any]]:
        value, data = _reply_value(text, ("result", "label"))
        if isinstance(value, list) and len(value) == 1:  # ["label"]
            value = value[0]
        match = by_folded.get(_bare(value).lower()) if isinstance(value, str) else None
        if match is None:
            raise _BadReply(f"`result` must be exactly one of {json.dumps(list(labels))}")
        passed = match in passing_set
        return (1.0 if passed else 0.0), match, passed, {**data, "result": match}

    return interpret


# ------------------------------------------------------------------ the scorers
@scorer("score_model", ScoreModelArgs, evaluator_type="llm", requires=())
def score_model(record: Mapping[str, Any], args: ScoreModelArgs) -> ScoreResult:
    """OpenAI's score_model grader: the grader's model scores within `range` (normalised to 0–1)."""
    low, high = args.range
    instruction = _SCORE_FORMAT.format(low=low, high=high)
    messages = conversation(args, record, instruction)
    return _ask(messages, args.sampling_params, args.model, instruction, score_interpreter(low, high))


@scorer("label_model", LabelModelArgs, evaluator_type="llm", requires=())
def label_model(record: Mapping[str, Any], args: LabelModelArgs) -> ScoreResult:
    """OpenAI's label_model grader: the grader's model picks one of `labels`; 1 if it passes."""
    instruction = _LABEL_FORMAT.format(labels=json.dumps(args.labels, ensure_ascii=False))
    messages = conversation(args, record, instruction)
    return _ask(messages, None, args.model, instruction, label_interpreter(args.labels, args.passing_labels))
