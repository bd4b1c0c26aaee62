"""``LocalStack``: moto + the template's resources + real handlers + an HTTP front.

Start-up order matters: moto first (the environment must point at it before any boto3
client exists), then the Lambda hook, then the resources in dependency order, then the
HTTP front, and the tenant bootstrap last, once everything it touches exists.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import requests
from moto.awslambda.models import lambda_backends
from moto.core.config import default_user_config

from assay_local.eventbridge import ExecutionEvents
from assay_local.http_front import HttpFront
from assay_local.iam.enforcer import Denial, Enforcer
from assay_local.iam.middleware import enabled_from_env, iam_middleware
from assay_local.lambda_runtime import FunctionConfig, LambdaRuntime
from assay_local.moto_hooks import install_replacements
from assay_local.moto_requests import (
    Middleware,
    MiddlewareMotoServer,
    drop_incomplete_requests,
    one_dynamodb_request_at_a_time,
)
from assay_local.persistence import (
    DataDirError,
    DurableStore,
    ReplayReport,
    StackResources,
    stopped_run_event,
    unfinished_runs,
)
from assay_local.presign import PresignVerifier, moto_secrets, presign_middleware
from assay_local.resources import (
    ACCOUNT_ID,
    REGION,
    CreatedStack,
    FunctionInfo,
    create_template_resources,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_STACK_NAME = "assay-local"
BOOTSTRAP_KEY_MIN_LENGTH = 20


def _not_the_documented_map_warning(record: logging.LogRecord) -> bool:
    """moto warns on every run that ToleratedFailurePercentage has no effect in its Map;
    docs/local-stack.md ("A batch that exhausts its retries") says so and what
    it changes, so the warning is dropped. Any other warning of moto's passes."""
    return "ToleratedFailurePercentage" not in record.getMessage()


S3_OBJECT_IN_MEMORY_BYTES = 256 * 1024

# How much lower than the stack's the CPU priority of the functions behind no HTTP route is
# (the workflow's Prepare/ScoreBatch/Finalize/MarkFailed, the reconciler): on AWS each
# execution environment has a CPU of its own and a run's scoring never slows the API; here
# they share the machine's cores, so the reads a client waits on are served first and a run
# takes the CPU they leave (its semantics unchanged: only how fast its workers run while
# the API is busy).
BACKGROUND_NICENESS = 10


class LocalStackError(Exception):
    """The local stack could not start (the message says why, for the CLI)."""


JUDGE_SECRET = "JudgeOpenAISecret"  # noqa: S105 - the logical id of the judge's secret, not a value


def judge_parameters(base_url: str | None) -> dict[str, str]:
    """The template parameters the local stack sets for LLM judges: it cannot call Bedrock
    (moto has no Converse), so it offers provider 'openai' only, and only when it was given
    an OpenAI-compatible endpoint; scheduling a run judged by another is then a 400."""
    if base_url:
        return {"JudgeProviders": "openai", "JudgeOpenAIBaseUrl": base_url}
    return {"JudgeProviders": "none"}


def judge_secret_value(kept: str | bytes | None, base_url: str | None, api_key: str | None) -> str | None:
    """The value JudgeOpenAISecret takes at this start, or ``None`` to leave it as it is
    (kept from the last start, or generated). A key given now wins over the kept value (and
    is kept in turn). Without one, a kept JSON value loses its ``base_url`` when a base URL
    is given now (the secret's would win over the parameter), and keeps its ``api_key``."""
    if api_key:
        return api_key
    if not base_url or not isinstance(kept, str) or not kept.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(kept)
    except ValueError:
        return None
    if not isinstance(document, dict) or "base_url" not in document:
        return None
    return json.dumps({k: v for k, v in document.items() if k != "base_url"})


def default_port() -> int:
    """``$ASSAY_PORT`` or 3000."""
    return int(os.environ.get("ASSAY_PORT") or 3000)


class LocalStack:
    """The embedded local deployment of ``template.yaml``.

    ``port=0`` picks a free port (tests); ``None`` means ``$ASSAY_PORT`` or 3000.
    ``bootstrap_key`` (at least 20 characters) bootstraps the ``local`` tenant with
    that owner key once the resources exist. ``iam`` (default: on unless
    ``ASSAY_LOCAL_IAM=off``) runs each function with its own role's credentials and
    refuses what the role's policies do not allow (``iam``).
    ``data_dir`` keeps the state (items, objects, secret values) there across restarts
    and crashes, and resumes the runs a stop cut short (``persistence``); ``None`` (the
    default: tests, the demo) keeps everything in memory and forgets it at stop.
    ``judge_base_url`` (an OpenAI-compatible endpoint, ending before ``/chat/completions``)
    and ``judge_api_key`` configure the LLM judges: template parameters
    ``JudgeOpenAIBaseUrl`` and ``JudgeProviders`` (``openai``, or ``none`` without a base
    URL: Bedrock cannot be called locally) and the value of ``JudgeOpenAISecret`` (a key
    given here wins over the one kept in ``data_dir``); ``parameters`` win over both.
    ``background_niceness`` lowers the CPU priority of the workers of the functions no HTTP
    route invokes (the workflow's, the reconciler) by that much (0: as the API's).
    """

    def __init__(
        self,
        port: int | None = 0,
        *,
        template_path: str | os.PathLike[str] = DEFAULT_TEMPLATE,
        stack_name: str = DEFAULT_STACK_NAME,
        parameters: dict[str, str] | None = None,
        bootstrap_key: str | None = None,
        max_workers_per_function: int = 4,
        background_niceness: int = BACKGROUND_NICENESS,
        access_log: bool = False,
        metered: bool = False,
        iam: bool | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        judge_base_url: str | None = None,
        judge_api_key: str | None = None,
    ) -> None:
        if bootstrap_key is not None and len(bootstrap_key) < BOOTSTRAP_KEY_MIN_LENGTH:
            raise LocalStackError(f"the bootstrap key must be at least {BOOTSTRAP_KEY_MIN_LENGTH} characters")
        if judge_base_url and not judge_base_url.startswith(("http://", "https://")):
            raise LocalStackError(
                f"the judge base URL must start with http:// or https:// (got {judge_base_url!r}), "
                "e.g. http://127.0.0.1:11434/v1"
            )
        self.judge_base_url = judge_base_url or None
        self._judge_api_key = judge_api_key or None
        self._given_secrets: dict[str, str | bytes] = {}  # secret values set at this start
        self._port = default_port() if port is None else port
        self.template_path = Path(template_path)
        self.stack_name = stack_name
        self._parameter_overrides = parameters or {}
        self._bootstrap_key = bootstrap_key
        self._max_workers = max_workers_per_function
        self._background_niceness = background_niceness
        self._access_log = access_log
        self._metered = metered  # count billable requests (the cost model), see metering.py
        self.meter: Any = None
        self._iam_enabled = enabled_from_env(os.environ) if iam is None else iam
        self.iam: Enforcer | None = None  # the enforcer, when IAM is enforced
        self.presign: PresignVerifier | None = None  # checks presigned S3 URLs, as S3 does
        self._role_keys: dict[tuple[str, str], dict[str, str]] = {}
        self._role_keys_lock = threading.Lock()
        self._moto: MiddlewareMotoServer | None = None
        self._runtime: LambdaRuntime | None = None
        self.events: ExecutionEvents | None = None
        self._front: HttpFront | None = None
        self._created: CreatedStack | None = None
        self._saved_env: dict[str, str | None] = {}
        self.moto_endpoint = ""
        self.startup_seconds = 0.0
        self.data_dir = None if data_dir is None else Path(data_dir).expanduser().resolve()
        self.durable: DurableStore | None = None  # the journal, when data_dir is set
        self.restored: ReplayReport | None = None  # what the start replayed from data_dir
        self.resumed_runs: list[str] = []  # runs in flight at the last stop, started again
        self.failed_runs: list[str] = []  # … and those that could not be: ended failed

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalStack:
        if self._moto is not None:
            raise LocalStackError("this local stack is already started")
        started = time.perf_counter()
        try:
            if self.data_dir is not None:
                try:
                    self.durable = DurableStore(self.data_dir, stack_name=self.stack_name)
                except DataDirError as exc:
                    raise LocalStackError(str(exc)) from exc
            self._start_moto()
            self._runtime = LambdaRuntime(
                self.aws_env(),
                self._max_workers,
                role_credentials=self._role_credentials if self.iam is not None else None,
                niceness=self._worker_niceness,
            )
            self._runtime.install()
            self._create_resources()
            self._restore_state()
            self.events = ExecutionEvents(self._invoke, ACCOUNT_ID, REGION)
            self.events.install()
            self._start_front()
            if self._bootstrap_key is not None:
                self._bootstrap(self._bootstrap_key)
            self._resume_unfinished_runs()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def stop(self) -> None:
        """Stop the front, the workers and moto; restore the environment."""
        if self._front is not None:
            self._front.stop()
            self._front = None
        durable, self.durable = self.durable, None
        if durable is not None:  # keep the state as it is now, before the teardown
            durable.close()
        if self.events is not None:
            self.events.uninstall()
            self.events = None
        if durable is not None and self._moto is not None:
            self._stop_executions()
        if self._runtime is not None:
            self._runtime.shutdown()
            self._runtime.uninstall()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._role_keys.clear()  # moto's next reset forgets the assumed roles
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------- accessors
    @property
    def url(self) -> str:
        """Base URL of the local HTTP API, e.g. ``http://127.0.0.1:3000``."""
        return self._require(self._front, "HTTP front").url

    @property
    def port(self) -> int:
        return self._require(self._front, "HTTP front").port

    @property
    def resources(self) -> dict[str, str]:
        """Logical id → physical id as ``Ref`` returns it (name or ARN)."""
        return dict(self._require(self._created, "resources").resources)

    @property
    def attributes(self) -> dict[str, dict[str, str]]:
        """Logical id → its ``GetAtt`` attributes (e.g. ``Arn``)."""
        return dict(self._require(self._created, "resources").attributes)

    @property
    def outputs(self) -> dict[str, Any]:
        """The template's Outputs, resolved (``ApiUrl`` is the AWS-style URL)."""
        return dict(self._require(self._created, "resources").outputs)

    @property
    def functions(self) -> dict[str, FunctionInfo]:
        return dict(self._require(self._created, "resources").functions)

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The function's environment variables as configured from the template."""
        return dict(self.functions[logical_id].environment)

    def shared_function_env(self) -> dict[str, str]:
        """Variables every function has with the same value (the template's Globals)."""
        envs = [f.environment for f in self.functions.values()]
        if not envs:
            return {}
        return {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs[1:])}

    def state_machine_definition(self, logical_id: str) -> str:
        """The definition as created, after DefinitionSubstitutions."""
        return self._require(self._created, "resources").state_machine_definitions[logical_id]

    def invocation_counts(self) -> dict[str, int]:
        """Handler invocations per function *name* since start."""
        return self._require(self._runtime, "Lambda runtime").invocation_counts()

    def worker_counts(self) -> dict[str, int]:
        """Live worker processes per function name."""
        return self._require(self._runtime, "Lambda runtime").worker_counts()

    def worker_pids(self, busy: bool | None = None) -> dict[str, list[int]]:
        """Worker process ids per function name: busy (serving an invocation now), idle,
        or all (``None``) — e.g. to kill one, as Lambda may lose an execution environment."""
        return self._require(self._runtime, "Lambda runtime").worker_pids(busy)

    def invocation_seconds(self) -> dict[str, tuple[float, int, float, int]]:
        """Per function name: (warm seconds, warm invocations, first-invocation seconds,
        memory MB) since start."""
        return self._require(self._runtime, "Lambda runtime").invocation_seconds()

    def iam_denials(self) -> list[Denial]:
        """Requests refused by the IAM enforcement since start (empty when it is off)."""
        return self.iam.denials() if self.iam is not None else []

    def iam_unmapped(self) -> list[str]:
        """Requests signed by a function role that the enforcement could not map to IAM
        actions (passed unchecked)."""
        return self.iam.unmapped() if self.iam is not None else []

    def aws_env(self) -> dict[str, str]:
        """Variables that point an AWS SDK at this stack's moto."""
        return {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "MOTO_PORT": self.moto_endpoint.rsplit(":", 1)[1],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str) -> Any:
        """A boto3 client for this stack's moto."""
        return boto3.client(service, endpoint_url=self.moto_endpoint, region_name=REGION)

    # ------------------------------------------------------------- internals
    @staticmethod
    def _require(value: Any, what: str) -> Any:
        if value is None:
            raise LocalStackError(f"the local stack is not started ({what} missing)")
        return value

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _worker_niceness(self, config: FunctionConfig) -> int:
        """``background_niceness`` for a function no HTTP route invokes, 0 for the API's."""
        created = self._created
        if created is None or created.routes is None:
            return 0
        if any(route.function_arn == config.arn for route in created.routes.routes):
            return 0
        return self._background_niceness

    def _start_moto(self) -> None:
        install_replacements()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
        preprocessor = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")
        if _not_the_documented_map_warning not in preprocessor.filters:
            preprocessor.addFilter(_not_the_documented_map_warning)
        # Outermost: a request cut short by its client's death is never served (nor judged).
        middleware: list[Middleware] = [drop_incomplete_requests]
        # Then S3 authenticates a presigned URL (signature, expiry) before anything else.
        harness_keys = {"testing": "testing"}  # aws_env()'s (moto's dummy) credentials
        self.presign = PresignVerifier(moto_secrets(ACCOUNT_ID, harness_keys), region=REGION)
        middleware.append(presign_middleware(self.presign))
        if self._iam_enabled:  # then IAM: a refused request is neither served nor billed
            self.iam = Enforcer(ACCOUNT_ID, REGION, stack=str(self.template_path.resolve()))
            middleware.append(iam_middleware(self.iam))
        if self._metered:
            from assay_local.metering import Meter, MeteringApp, moto_stored_item

            meter = self.meter = Meter(moto_stored_item(ACCOUNT_ID, REGION))
            middleware.append(lambda app: MeteringApp(app, meter))
        middleware.append(one_dynamodb_request_at_a_time)  # innermost: around moto itself
        if self.durable is not None:  # … but for the journal: it records what moto applied
            middleware.append(self.durable.middleware)
        self._moto = MiddlewareMotoServer(middleware, ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        # MOTO_PORT: the Step Functions interpreter's own Lambda client dials
        # localhost:$MOTO_PORT (5000 otherwise, failing with a misleading States. error).
        self._set_env(self.aws_env())
        # SAM attaches AWSLambdaBasicExecutionRole; moto only knows AWS-managed
        # policies when asked to load them (POST /moto-api/config ignores "iam").
        self._set_env({"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
        # S3 keeps an object in memory up to this size and spills the rest to a temporary
        # file (moto's default is ~5 MB): exports and uploads would otherwise stay resident
        # for as long as the stack runs.
        self._set_env({"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(S3_OBJECT_IN_MEMORY_BYTES)})
        # moto's backends are process-global: start from a clean slate every time.
        requests.post(f"{self.moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        config = {"stepfunctions": {"execute_state_machine": True}}
        requests.post(f"{self.moto_endpoint}/moto-api/config", json=config, timeout=10).raise_for_status()
        # GET /moto-api/config does not echo the stepfunctions section (moto 5.2.5), but
        # the server runs in this process, so read the setting it really uses.
        if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
            raise LocalStackError("moto did not enable ASL execution")

    def _role_credentials(self, role_arn: str, function_name: str) -> dict[str, str]:
        """The function's execution-role credentials, as Lambda gives them: moto's STS
        AssumeRole on the role (session name = the function's name), once per function."""
        with self._role_keys_lock:
            cached = self._role_keys.get((role_arn, function_name))
            if cached is None:
                sts = boto3.client(
                    "sts",
                    endpoint_url=self.moto_endpoint,
                    region_name=REGION,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto's dummy keys
                )
                keys = sts.assume_role(
                    RoleArn=role_arn, RoleSessionName=function_name[:64], DurationSeconds=43200
                )["Credentials"]
                cached = self._role_keys[(role_arn, function_name)] = {
                    "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": keys["SessionToken"],
                }
            return dict(cached)

    def _create_resources(self) -> None:
        kept = self.durable.secret_values() if self.durable is not None else {}
        judge = judge_secret_value(kept.get(JUDGE_SECRET), self.judge_base_url, self._judge_api_key)
        self._given_secrets = {JUDGE_SECRET: judge} if judge is not None else {}
        self._created = create_template_resources(
            self.template_path,
            stack_name=self.stack_name,
            session=boto3.Session(region_name=REGION),
            parameters=self._parameter_overrides,
            secret_values={**kept, **self._given_secrets},
            local_parameters=judge_parameters(self.judge_base_url),
        )

    def _start_front(self) -> None:
        created = self._require(self._created, "resources")
        if created.routes is None:
            raise LocalStackError("the template defines no HTTP API")
        self._front = HttpFront(
            created.routes,
            self._invoke,
            api_id=created.api_id,
            account_id=ACCOUNT_ID,
            port=self._port,
            access_log=self._access_log,
        )
        self._front.start()

    def _invoke(self, function_arn: str, event: dict[str, Any]) -> tuple[bytes, bool]:
        """Invoke as API Gateway and EventBridge do: straight into the Lambda runtime, with
        the function moto holds (its configuration, the same hook the Step Functions Task
        states reach through moto's Invoke). Not through moto's Invoke API: that signed HTTP
        round trip to the stack's own interpreter cost more of it than the handler's work."""
        try:
            function = lambda_backends[ACCOUNT_ID][REGION].get_function(function_arn)
            payload, errored, _ = self._require(self._runtime, "Lambda runtime").invoke(function, event)
        except Exception:
            traceback.print_exc()
            return b"", True
        if self.meter is not None:
            self.meter.add(**{"lambda.invoke_requests": 1})
        return payload.encode(), errored

    def _restore_state(self) -> None:
        """Durable: give the journal the template's resources, replay it, then record."""
        if self.durable is None:
            return
        created = self._require(self._created, "resources")
        physical = [(created.types[lid], ref) for lid, ref in created.resources.items()]
        secrets = {name: lid for lid, name in created.secret_names.items()}
        secrets.update({created.resources[lid]: lid for lid in created.secret_names})
        self.durable.attach(
            self.moto_endpoint.removeprefix("http://"),
            StackResources(
                tables=tuple(ref for kind, ref in physical if kind == "AWS::DynamoDB::Table"),
                buckets=tuple(ref for kind, ref in physical if kind == "AWS::S3::Bucket"),
                secrets=secrets,
            ),
            created.secret_values,
            given={lid: v for lid, v in self._given_secrets.items() if lid in created.secret_names},
        )
        self.restored = self.durable.restore()
        self.durable.start_recording()

    def _resume_unfinished_runs(self) -> None:
        """Durable: moto's executions do not outlive the process, so a run that was
        ``pending`` or ``running`` when the stack stopped gets its execution started again
        (same name, same input): the workflow is idempotent (prepare moves it to running
        once, a batch already recorded counts nothing, finalize completes it once). A run
        whose execution cannot be started is ended ``failed`` by the reconciler, through
        the execution-ended event AWS would send."""
        if self.durable is None:
            return
        created = self._require(self._created, "resources")
        machines = [
            ref
            for lid, ref in created.resources.items()
            if created.types[lid] == "AWS::StepFunctions::StateMachine"
        ]
        machine = created.outputs.get("StateMachineArn") or (machines[0] if machines else None)
        tables = [
            ref for lid, ref in created.resources.items() if created.types[lid] == "AWS::DynamoDB::Table"
        ]
        if machine is None or len(tables) != 1:
            return
        sfn = self.client("stepfunctions")
        for run in unfinished_runs(self.durable, tables[0]):
            try:
                sfn.start_execution(
                    stateMachineArn=machine,
                    name=run.run_id,
                    input=json.dumps({"tenant_id": run.tenant_id, "run_id": run.run_id}),
                )
                self.resumed_runs.append(run.run_id)
            except Exception as exc:
                events = self._require(self.events, "EventBridge")
                events.publish(
                    stopped_run_event(run, machine, ACCOUNT_ID, REGION, f"{type(exc).__name__}: {exc}")
                )
                self.failed_runs.append(run.run_id)

    def _stop_executions(self) -> None:
        """Stop what still runs on the state machines. moto's backends are process-global:
        an execution left running would go on against the next stack started in this
        process, after its replay, and write into the state that stack restored."""
        created = self._created
        if created is None:
            return
        try:
            sfn = self.client("stepfunctions")
            for lid, ref in created.resources.items():
                if created.types[lid] != "AWS::StepFunctions::StateMachine":
                    continue
                for page in sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=ref, statusFilter="RUNNING"
                ):
                    for execution in page["executions"]:
                        sfn.stop_execution(
                            executionArn=execution["executionArn"],
                            error="LocalStackStopped",
                            cause="the local stack stopped",
                        )
        except Exception:  # best effort: the stop goes on
            logging.getLogger(__name__).exception("could not stop the running executions")

    def _bootstrap(self, owner_key: str) -> None:
        """Create the ``local`` tenant with ``owner_key`` as its owner key.

        It runs in a fresh process with exactly the variables the functions get: the
        Lambda package caches settings and boto3 clients at module level, and those
        must not outlive this stack inside a long-lived process (e.g. a test session
        that starts several stacks)."""
        runtime = self._require(self._runtime, "Lambda runtime")
        try:
            runtime.call(
                "assay_service.bootstrap.bootstrap_tenant",
                {"slug": "local", "owner_key": owner_key},
                self.shared_function_env(),
                timeout_s=60,
            )
        except RuntimeError as exc:
            if str(exc).startswith(("ModuleNotFoundError", "ImportError", "AttributeError")):
                raise LocalStackError(
                    "ASSAY_BOOTSTRAP_KEY is set but assay_service.bootstrap.bootstrap_tenant "
                    f"is not available: {exc}"
                ) from exc
            raise LocalStackError(f"bootstrapping the 'local' tenant failed: {exc}") from exc
