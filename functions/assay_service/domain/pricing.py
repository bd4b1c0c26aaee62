"""What a judge call costs: USD per 1M input / output tokens, per model — pure.

The shipped figures are on-demand list prices (Bedrock us-east-1, OpenAI API) as of
``PRICES_AS_OF``; they change, so a deployment can override or extend them with the
``JUDGE_PRICES`` setting (JSON ``{"model": {"input": usd_per_1m, "output": usd_per_1m}}``).
A model with no price is not an error: its evaluations simply carry no cost. An embeddings
model has an input price only (its output price is 0: an embeddings call has no output
tokens).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

PRICES_AS_OF = "2026-11-22"


@dataclass(frozen=True, slots=True)
class Price:
    input_per_million: float
    output_per_million: float


DEFAULT_PRICES: dict[str, Price] = {
    # Amazon Bedrock, on-demand, us-east-1 (regional endpoints)
    "anthropic.claude-haiku-4-5-20251001-v1:0": Price(1.00, 5.00),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": Price(3.00, 15.00),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Price(0.80, 4.00),
    # Claude 3.5 Sonnet moved to extended-access pricing on Bedrock (twice the launch price).
    "anthropic.claude-3-5-sonnet-20241022-v2:0": Price(6.00, 30.00),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": Price(3.00, 15.00),
    "anthropic.claude-3-haiku-20240307-v1:0": Price(0.25, 1.25),
    "amazon.nova-micro-v1:0": Price(0.035, 0.14),
    "amazon.nova-lite-v1:0": Price(0.06, 0.24),
    "amazon.nova-pro-v1:0": Price(0.80, 3.20),
    "meta.llama3-1-8b-instruct-v1:0": Price(0.22, 0.22),
    "meta.llama3-1-70b-instruct-v1:0": Price(0.72, 0.72),
    # OpenAI API
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    # Embeddings (cosine_similarity): input tokens only, as of 2026-12-08
    "text-embedding-3-small": Price(0.02, 0.0),  # OpenAI API
    "amazon.titan-embed-text-v2:0": Price(0.02, 0.0),  # Amazon Bedrock, on-demand, us-east-1
}

# Bedrock cross-region inference profiles ("us.anthropic…") cost what the model costs.
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|us-gov|global)\.")


def parse_overrides(raw: str | None) -> dict[str, Price]:
    """The ``JUDGE_PRICES`` setting; a malformed value is a deployment error (raises)."""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("JUDGE_PRICES must be a JSON object of model → {input, output}")
    out = {}
    for model, price in data.items():
        if not isinstance(price, dict):
            raise ValueError(f"JUDGE_PRICES[{model!r}] must be an object {{input, output}}")
        out[model] = Price(float(price["input"]), float(price["output"]))
    return out


def price_table(overrides: Mapping[str, Price] | None = None) -> dict[str, Price]:
    return {**DEFAULT_PRICES, **(overrides or {})}


def cost_usd(
    model: str, input_tokens: int | None, output_tokens: int | None, prices: Mapping[str, Price] | None = None
) -> float | None:
    """The call's cost in USD, or None when the model (or the usage) is unknown."""
    table = DEFAULT_PRICES if prices is None else prices
    price = table.get(model) or table.get(_PROFILE_PREFIX.sub("", model))
    if price is None or input_tokens is None or output_tokens is None:
        return None
    return round(
        (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000, 10
    )
