"""Deployment settings, read from the environment on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    table_name: str
    bucket_name: str
    api_key_secret_arn: str | None = None
    state_machine_arn: str | None = None
    presign_expiry_seconds: int = Field(default=900, ge=60, le=900)
    export_inline_max_bytes: int = Field(default=5_000_000, ge=1024, le=5_500_000)
    default_batch_size: int = Field(default=100, ge=1, le=1000)
    map_max_concurrency: int = Field(default=40, ge=1, le=10_000)
    max_runs_in_flight: int = Field(default=20, ge=1, le=10_000)
    max_records_per_version: int = Field(default=1_000_000, ge=1, le=100_000_000)
    # LLM judges (docs/judges.md)
    judge_openai_base_url: str | None = None
    judge_openai_secret_arn: str | None = None  # the key, or JSON {"base_url", "api_key"}
    judge_timeout_seconds: float = Field(default=60.0, gt=0, le=240)  # < the 300 s batch
    judge_prices: str | None = None  # JSON {"model": {"input": usd/1M, "output": usd/1M}}
    # The providers this deployment can call (template parameter JudgeProviders): "bedrock,openai",
    # one of them, or "none" (the local stack without --judge-base-url).
    judge_providers: str = "bedrock,openai"
    # Provider limits shared by every run (template parameter ModelRateLimits; docs/generation.md):
    # JSON {"provider:model" or "*": {"requests_per_minute", "tokens_per_minute", "concurrent"}}.
    model_rate_limits: str | None = None
    # The embeddings model of cosine_similarity (template parameter EmbeddingModel; docs/judges.md):
    # a Bedrock id is Bedrock's, any other name the OpenAI-compatible endpoint's; "" = defaults.
    embedding_model: str = ""

    @property
    def offered_judge_providers(self) -> frozenset[str]:
        names = {name.strip() for name in self.judge_providers.split(",")}
        return frozenset(names - {"", "none"})

    @field_validator(
        "judge_openai_base_url", "judge_openai_secret_arn", "judge_prices", "model_rate_limits", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """A template parameter left at its default "" means: not set."""
        return None if value == "" else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    names = Settings.model_fields
    values = {name: os.environ[name.upper()] for name in names if name.upper() in os.environ}
    return Settings.model_validate(values)
