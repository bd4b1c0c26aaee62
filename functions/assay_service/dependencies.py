"""Cached getters for clients and adapters: built on first use, never at import.

Clients come from a plain ``botocore`` session, not ``boto3``: boto3 adds nothing the
adapters use, and importing it (with s3transfer) costs ~200 ms of every cold start.
Endpoints still follow ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (botocore
resolves them), credentials and region the usual chain (``AWS_DEFAULT_REGION``).

Each getter is annotated with the port it serves (``ports.py``), not its adapter: services
are typed against the ports, and mypy checks here that every adapter built satisfies its
port (docs/decisions/0014-ports.md). ``table()`` is the DynamoDB adapters' own, not a port.

``DEPLOYED`` is every getter as one ``ports.Ports``: the default ``ports`` argument of the
services. It reads a getter when a service asks for the port, so importing this module
still builds nothing (and a test that swaps a getter is heard).

Tests reset them with ``reset()`` (e.g. after pointing the environment at moto).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from assay_service.settings import get_settings

if TYPE_CHECKING:  # adapters are imported by the getters: a handler pays only for its own
    from assay_service.adapters.dynamodb import Table
    from assay_service.domain.generation import ModelClient
    from assay_service.ports import (
        ArtifactStore,
        DatasetRepository,
        EvalRepository,
        Keyring,
        OpenAIObjects,
        Ports,
        ProjectRepository,
        RateLimiter,
        ResponseCache,
        RunRepository,
        TenantRepository,
        Workflow,
    )


@cache
def session() -> Any:
    from botocore.session import get_session  # deferred: keeps module import cheap

    return get_session()


def _config(**overrides: Any) -> Any:
    from botocore.config import Config

    return Config(
        **{
            "retries": {"mode": "standard", "max_attempts": 4},
            "connect_timeout": 3,
            "read_timeout": 20,
            **overrides,
        }
    )


@cache
def client(service: str) -> Any:
    config = _config(signature_version="s3v4" if service == "s3" else None)
    return session().create_client(service, config=config)


@lru_cache(maxsize=1)
def table() -> Table:
    from assay_service.adapters.dynamodb import Table

    return Table(client("dynamodb"), get_settings().table_name)


@lru_cache(maxsize=1)
def tenants() -> TenantRepository:
    from assay_service.adapters.dynamodb import DynamoDBTenantRepository

    return DynamoDBTenantRepository(table())


@lru_cache(maxsize=1)
def projects() -> ProjectRepository:
    from assay_service.adapters.dynamodb import DynamoDBProjectRepository

    return DynamoDBProjectRepository(table())


@lru_cache(maxsize=1)
def datasets() -> DatasetRepository:
    from assay_service.adapters.dynamodb import DynamoDBDatasetRepository

    return DynamoDBDatasetRepository(table())


@lru_cache(maxsize=1)
def evals() -> EvalRepository:
    from assay_service.adapters.dynamodb import DynamoDBEvalRepository

    return DynamoDBEvalRepository(table())


@lru_cache(maxsize=1)
def runs() -> RunRepository:
    from assay_service.adapters.dynamodb import DynamoDBRunRepository

    return DynamoDBRunRepository(table())


@lru_cache(maxsize=1)
def artifacts() -> ArtifactStore:
    from assay_service.adapters.s3 import S3ArtifactStore

    return S3ArtifactStore(client("s3"), get_settings().bucket_name)


@lru_cache(maxsize=1)
def workflow() -> Workflow:
    from assay_service.adapters.stepfunctions import StepFunctionsWorkflow

    arn = get_settings().state_machine_arn
    if not arn:
        raise RuntimeError("STATE_MACHINE_ARN is not set for this function")
    return StepFunctionsWorkflow(client("stepfunctions"), arn)


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    from assay_service.adapters.secrets import SecretsManagerKeyring

    arn = get_settings().api_key_secret_arn
    if not arn:
        raise RuntimeError("API_KEY_SECRET_ARN is not set for this function")
    return SecretsManagerKeyring(client("secretsmanager"), arn)


@lru_cache(maxsize=2)
def model_client(provider: str) -> ModelClient:
    """The model client of a provider (``bedrock`` or ``openai``): generation and judges."""
    from assay_service.adapters.judges import (
        BedrockJudgeClient,
        OpenAIJudgeClient,
        openai_credentials,
    )

    settings = get_settings()
    if provider == "openai":
        secret = None
        if settings.judge_openai_secret_arn:
            secret = client("secretsmanager").get_secret_value(SecretId=settings.judge_openai_secret_arn)[
                "SecretString"
            ]
        base_url, key = openai_credentials(secret, settings.judge_openai_base_url)
        return OpenAIJudgeClient(base_url, key, timeout=settings.judge_timeout_seconds)
    # Throttling is retried by the state machine (backoff + jitter), not here.
    config = _config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=5,
        read_timeout=settings.judge_timeout_seconds,
    )
    return BedrockJudgeClient(session().create_client("bedrock-runtime", config=config))


@lru_cache(maxsize=1)
def rate_limiter() -> RateLimiter:
    from assay_service.adapters.dynamodb import DynamoDBRateLimiter

    return DynamoDBRateLimiter(table())


@lru_cache(maxsize=1)
def response_cache() -> ResponseCache:
    from assay_service.adapters.dynamodb import DynamoDBResponseCache

    return DynamoDBResponseCache(table())


@lru_cache(maxsize=1)
def openai_objects() -> OpenAIObjects:
    from assay_service.adapters.dynamodb.openai_objects import DynamoDBOpenAIObjects

    return DynamoDBOpenAIObjects(table())


@lru_cache(maxsize=1)
def judge_prices() -> dict:
    from assay_service.domain.pricing import parse_overrides, price_table

    return price_table(parse_overrides(get_settings().judge_prices))


class DeployedPorts:
    """The deployed adapters, each read from its cached getter when a service asks for it."""

    @property
    def tenants(self) -> TenantRepository:
        return tenants()

    @property
    def projects(self) -> ProjectRepository:
        return projects()

    @property
    def datasets(self) -> DatasetRepository:
        return datasets()

    @property
    def evals(self) -> EvalRepository:
        return evals()

    @property
    def runs(self) -> RunRepository:
        return runs()

    @property
    def artifacts(self) -> ArtifactStore:
        return artifacts()

    @property
    def workflow(self) -> Workflow:
        return workflow()

    @property
    def keyring(self) -> Keyring:
        return keyring()

    def model_client(self, provider: str) -> ModelClient:
        return model_client(provider)

    @property
    def rate_limiter(self) -> RateLimiter:
        return rate_limiter()

    @property
    def response_cache(self) -> ResponseCache:
        return response_cache()

    @property
    def openai(self) -> OpenAIObjects:
        return openai_objects()

    def judge_prices(self) -> dict:
        return judge_prices()


DEPLOYED: Ports = DeployedPorts()  # mypy checks here that the getters make up every port


def reset(*, clients: bool = False) -> None:
    """Forget cached settings and adapters (and, with ``clients``, the botocore clients —
    needed when the AWS endpoint changes, not when only the function's settings do)."""
    from assay_service.settings import get_settings as settings_getter

    for getter in (
        table,
        tenants,
        projects,
        datasets,
        evals,
        runs,
        artifacts,
        workflow,
        keyring,
        model_client,
        rate_limiter,
        response_cache,
        openai_objects,
        judge_prices,
        settings_getter,
    ):
        getter.cache_clear()
    if clients:
        client.cache_clear()
        session.cache_clear()
