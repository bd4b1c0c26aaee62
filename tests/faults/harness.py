"""Fault injection on the real DynamoDB client (botocore events) and the run invariants.

Faults, each fired once per planned invocation (``Fault.fired``):

==========================  ==============================================  ======================
kind                        what happens                                    Step Functions sees
==========================  ==============================================  ======================
throttle_write              ProvisionedThroughputExceededException before   TransientStoreError
                            the batch write (before-call)
throttle_read               ThrottlingException on the first GetItem        TransientStoreError
conn_exhausted              EndpointConnectionError before the write, the   TransientStoreError
                            client's own retries used up (before-call)
conn_before_write           EndpointConnectionError before the request      nothing: the client
                            reaches the table (before-send, first)          retries it
conn_after_write            ConnectionClosedError after the table applied   nothing: the client
                            the write (before-send, last)                   retries it
timeout_after_commit        ReadTimeoutError after a committed write        TransientStoreError
                            (after-call)
s3_read_error               ReadTimeoutError reading the batch's records    TransientStoreError
                            from S3, the client's retries spent
crash_before_write          the process dies after scoring, before writing  Lambda.Unknown
crash_after_write           the process dies right after the write          Lambda.Unknown
service_error_after_success the function ran; the Invoke call failed        Lambda.ServiceException
lambda_throttle             the Invoke call is throttled; the function never  Lambda.TooManyRequests-
                            runs                                            Exception
timeout_race                the Task times out while the function runs on;  States.Timeout
                            its retry writes concurrently (two threads)
duplicate_delivery          the Map item is delivered again after success   —
==========================  ==============================================  ======================
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tests.faults.simulator import Armed, Fault, LambdaCrash, Stats

ENDPOINT = "https://dynamodb.us-east-1.amazonaws.com"
WRITE_OPS = frozenset({"TransactWriteItems", "PutItem", "UpdateItem"})

# Faults a Score Batch attempt may draw, with the error name Step Functions sees (None: the
# attempt still succeeds). Weights favour the write-path faults the issue names.
SCORE_FAULTS: dict[str, str | None] = {
    "throttle_write": "TransientStoreError",
    "throttle_read": "TransientStoreError",
    "conn_exhausted": "TransientStoreError",
    "timeout_after_commit": "TransientStoreError",
    "s3_read_error": "TransientStoreError",
    "service_error_after_success": "Lambda.ServiceException",
    "lambda_throttle": "Lambda.TooManyRequestsException",
    "crash_before_write": "Lambda.Unknown",
    "crash_after_write": "Lambda.Unknown",
    "timeout_race": "States.Timeout",
    "conn_before_write": None,
    "conn_after_write": None,
}


OFF_WRITE_PATH = frozenset({"throttle_read", "service_error_after_success"})
# Faults of the single-invocation steps; each is retried by that step's own Retry.
STEP_FAULTS = (
    "throttle_read",
    "throttle_write",
    "timeout_after_commit",
    "conn_exhausted",
    "crash_before_write",
    "crash_after_write",
)

# The five categories (and which kinds make each up); the service errors after a
# successful run are injected on top and counted apart.
CATEGORIES: dict[str, frozenset[str]] = {
    "throttles before the write": frozenset({"throttle_write", "throttle_read", "lambda_throttle"}),
    "connection errors": frozenset(
        {"conn_exhausted", "conn_before_write", "conn_after_write", "s3_read_error"}
    ),
    "timeouts after the write": frozenset({"timeout_after_commit", "timeout_race"}),
    "duplicate deliveries": frozenset({"duplicate_delivery"}),
    "crashed handlers": frozenset({"crash_before_write", "crash_after_write"}),
}


class FaultInjector:
    """Registers on the client's events; fires the fault armed for the calling thread."""

    def __init__(self, client: Any, armed: Armed, stats: Stats, s3: Any) -> None:
        self.armed = armed
        self.stats = stats
        s3.meta.events.register_first("before-call.s3.GetObject", self._s3_read)
        events = client.meta.events
        # Specific events run before moto's generic before-send handler (the table): a fault
        # there is "before the write"; register_last on the generic event runs after it.
        for op in ("TransactWriteItems", "PutItem", "UpdateItem", "GetItem"):
            events.register_first(f"before-call.dynamodb.{op}", self._before_call)
            events.register_first(f"before-send.dynamodb.{op}", self._before_send)
            events.register_first(f"after-call.dynamodb.{op}", self._after_call)
        events.register_last("before-send", self._after_send)
        events.register_first("needs-retry.dynamodb", self._retry_now)

    def _fire(self, fault: Fault) -> None:
        fault.fired = True
        self.stats.count(fault.kind)

    def _current(self, event_name: str) -> tuple[Fault | None, str]:
        fault = self.armed.fault
        op = event_name.rsplit(".", 1)[-1]
        if fault is None or fault.fired:
            return None, op
        return fault, op

    def _before_call(self, event_name: str, **_: Any) -> None:
        fault, op = self._current(event_name)
        if fault is None:
            return
        if fault.kind == "throttle_read" and op == "GetItem":
            self._fire(fault)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, op)
        if op not in WRITE_OPS:
            return
        if fault.kind == "throttle_write":
            self._fire(fault)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, op
            )
        if fault.kind == "conn_exhausted":
            self._fire(fault)
            raise EndpointConnectionError(endpoint_url=ENDPOINT)
        if fault.kind == "crash_before_write":
            self._fire(fault)
            raise LambdaCrash("injected: process died before the write")
        if fault.kind in ("timeout_race", "race_partner") and fault.barrier is not None:
            fault.fired = True  # counted once, as timeout_race, by the simulator
            with contextlib.suppress(threading.BrokenBarrierError):
                fault.barrier.wait()  # both invocations have scored; now both write

    def _s3_read(self, **_: Any) -> None:
        fault = self.armed.fault
        if fault is not None and not fault.fired and fault.kind == "s3_read_error":
            self._fire(fault)
            raise ReadTimeoutError(endpoint_url="https://s3.us-east-1.amazonaws.com")

    def _before_send(self, event_name: str, **_: Any) -> None:
        fault, op = self._current(event_name)
        if fault is not None and fault.kind == "conn_before_write" and op in WRITE_OPS:
            self._fire(fault)
            error = EndpointConnectionError(endpoint_url=ENDPOINT)
            error.injected = True
            raise error

    def _after_send(self, event_name: str, **_: Any) -> None:
        fault, op = self._current(event_name)
        if (
            fault is not None
            and fault.kind == "conn_after_write"
            and op in WRITE_OPS
            and event_name.startswith("before-send.dynamodb.")
        ):
            self._fire(fault)
            error = ConnectionClosedError(endpoint_url=ENDPOINT)
            error.injected = True
            raise error

    def _after_call(self, event_name: str, http_response: Any = None, **_: Any) -> None:
        fault, op = self._current(event_name)
        if fault is None or op not in WRITE_OPS or http_response is None or http_response.status_code >= 300:
            return  # only a committed write
        if fault.kind == "timeout_after_commit":
            self._fire(fault)
            raise ReadTimeoutError(endpoint_url=ENDPOINT)
        if fault.kind == "crash_after_write":
            self._fire(fault)
            raise LambdaCrash("injected: process died after the write")

    @staticmethod
    def _retry_now(caught_exception: Any = None, **_: Any) -> int | None:
        # The client retries our injected connection errors as botocore would, minus its sleep.
        return 0 if getattr(caught_exception, "injected", False) else None


@dataclass
class Plan:
    """Seeded fault plan: the same seed draws the same faults whatever the thread order."""

    seed: int
    fault_rate: float = 0.95
    redelivery_rate: float = 0.5
    max_attempts: int = 10
    drawn: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rng(self, *parts: Any) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    def __call__(self, state: str, key: str, attempt: int, budget: Any) -> Fault | None:
        rng = self.rng(state, key, attempt)
        if state == "Score Batch":
            if attempt >= self.max_attempts or rng.random() >= self.fault_rate:
                return None
            kinds = [k for k, error in SCORE_FAULTS.items() if error is None or budget(error) > 0]
            if not key.endswith("#0"):  # a redelivery of a recorded batch never reaches a write
                kinds = [k for k in kinds if k in ("throttle_read", "service_error_after_success")]
            if not kinds:
                return None
            # A fault the client absorbs ends the attempt chain (the attempt succeeds), and a
            # read throttle or an Invoke error never reaches the write: both rarer than the
            # write-path faults the issue names.
            weights = [
                0.4 if SCORE_FAULTS[k] is None else 0.35 if k in OFF_WRITE_PATH else 1.0 for k in kinds
            ]
            kind = rng.choices(kinds, weights)[0]
        elif attempt < 2:  # prepare, finalize, mark failed: up to two faults, crashes included
            kinds = [k for k in STEP_FAULTS if budget(SCORE_FAULTS[k]) > 0]
            if not kinds:
                return None
            kind = rng.choice(kinds)
        else:
            return None
        with self.lock:
            self.drawn[kind] += 1
        return Fault(kind)

    def redeliver(self, key: str) -> bool:
        return self.rng("redeliver", key).random() < self.redelivery_rate


def expected_ids(run_id: UUID, records: int, metrics: int) -> set[UUID]:
    from assay_service.domain.ids import evaluation_id

    return {evaluation_id(run_id, r, m) for r in range(records) for m in range(metrics)}
