"""Two schedules with one Idempotency-Key at once, on AWS: the second's TransactWriteItems
can be cancelled with ``TransactionConflict`` on the key's claim while the first commits.
DynamoDBRunRepository.create tries again (bounded, jittered) and, once the first has
committed, finds the claim and replays its run. The local stack serializes DynamoDB, so the
cancellations are played here on a real botocore client through its Stubber (which also
checks every request against the DynamoDB API model)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import boto3
import pytest
from assay_service.adapters import dynamodb
from assay_service.adapters.dynamodb import (
    CREATE_ATTEMPTS,
    DynamoDBRunRepository,
    Table,
    model_item,
    serialize,
)
from assay_service.domain.ids import run_key
from assay_service.errors import NotFoundError, QuotaExceededError, TransientStoreError
from assay_service.models.domain import Metric, Run
from botocore.stub import Stubber

from tests.support.factories import a_run

TABLE = "assay-test"
KEY = ("nightly-2026-11-22", "hash-of-the-request")


def new_run() -> Run:
    return a_run(
        item_count=5,
        threshold=0.7,
        metrics=[Metric(name="exact", scorer="exact_match", threshold=1.0)],
    )


def reasons(run: Run, first: str, **at: str) -> list[dict[str, str]]:
    """CancellationReasons for create's transaction: ``first`` on item 0 (the claim),
    ``at={"2": code}`` on others, "None" (fine) elsewhere."""
    # claim, run, in-flight, counters, then the checks of the dataset and the eval
    count = 3 + len(DynamoDBRunRepository.counter_keys(run)) + len(DynamoDBRunRepository.REFERENCES)
    codes = ["None"] * count
    codes[0] = first
    for index, code in at.items():
        codes[int(index)] = code
    return [{"Code": code} for code in codes]


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoDBRunRepository, Stubber, list[float]]]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    pauses: list[float] = []
    with Stubber(client) as stubber, pytest.MonkeyPatch.context() as patch:
        patch.setattr(dynamodb.runs, "_pause", pauses.append)
        yield DynamoDBRunRepository(Table(client, TABLE)), stubber, pauses
        stubber.assert_no_pending_responses()


def cancelled(stubber: Stubber, codes: list[dict[str, str]]) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled, please refer cancellation reasons for specific reasons",
        http_status_code=400,
        modeled_fields={"CancellationReasons": codes},
    )


def committed(stubber: Stubber) -> None:
    stubber.add_response("transact_write_items", {})


def claim_found(stubber: Stubber, run: Run, standing: uuid.UUID, request_hash: str) -> None:
    """The key's claim, as the first request committed it, read (consistently) by key."""
    claim_pk = f"T#{run.tenant_id}#IDEM#{hashlib.sha256(KEY[0].encode()).hexdigest()}"
    stubber.add_response(
        "get_item",
        {
            "Item": serialize(
                {
                    "PK": claim_pk,
                    "SK": "IDEM",
                    "tenant_id": str(run.tenant_id),
                    "run_id": str(standing),
                    "request_hash": request_hash,
                    "ttl": 1,
                }
            )
        },
        expected_params={
            "TableName": TABLE,
            "Key": serialize({"PK": claim_pk, "SK": "IDEM"}),
            "ConsistentRead": True,
        },
    )
    # The replay checks the claimed run still exists (a deleted run's key is a 409).
    run_pk = f"T#{run.tenant_id}#RUN#{run_key(standing)}"
    stubber.add_response(
        "get_item",
        {"Item": serialize(model_item(run.model_copy(update={"id": standing}), PK=run_pk, SK="RUN"))},
        expected_params={
            "TableName": TABLE,
            "Key": serialize({"PK": run_pk, "SK": "RUN"}),
            "ConsistentRead": True,
        },
    )


def test_a_conflict_on_the_claim_then_the_first_commits_replays_the_same_run(stubbed):
    """GIVEN the first request committing WHEN the second's transaction is cancelled with
    TransactionConflict on the claim, then (retried) with ConditionalCheckFailed on it THEN
    the second gets the first's run id — no exception, no second run."""
    runs, stubber, pauses = stubbed
    first, second = uuid.uuid4(), new_run()
    cancelled(stubber, reasons(second, "TransactionConflict"))
    cancelled(stubber, reasons(second, "ConditionalCheckFailed"))
    claim_found(stubber, second, first, KEY[1])
    assert runs.create(second, max_in_flight=10, idempotency=KEY) == first
    assert len(pauses) == 1 and 0 <= pauses[0] <= dynamodb.CREATE_BACKOFF_S


@pytest.mark.parametrize(
    "codes",
    [
        # contention reported on the claim alone, on another item, or on several
        {"first": "TransactionConflict"},
        {"first": "None", "1": "TransactionConflict"},
        {"first": "TransactionConflict", "3": "TransactionConflict", "2": "ThrottlingError"},
        # the claim is contended and the in-flight count (item 2) is at its limit: which wins
        # depends on the concurrent commit, so it is not a quota error yet
        {"first": "TransactionConflict", "2": "ConditionalCheckFailed"},
    ],
)
def test_contention_in_any_order_is_retried_until_it_clears(stubbed, codes):
    runs, stubber, pauses = stubbed
    run = new_run()
    first = codes.pop("first")
    cancelled(stubber, reasons(run, first, **codes))
    cancelled(stubber, reasons(run, first, **codes))
    committed(stubber)  # the first request failed or never was: this one creates its run
    assert runs.create(run, max_in_flight=10, idempotency=KEY) == run.id
    assert len(pauses) == 2


def test_without_an_idempotency_key_contention_is_retried_too(stubbed):
    runs, stubber, pauses = stubbed
    run = new_run()
    codes = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (
        1 + len(DynamoDBRunRepository.counter_keys(run)) + len(DynamoDBRunRepository.REFERENCES)
    )
    cancelled(stubber, codes)
    committed(stubber)
    assert runs.create(run, max_in_flight=10) == run.id and len(pauses) == 1


def test_the_retries_are_bounded(stubbed):
    """GIVEN contention that never clears THEN after CREATE_ATTEMPTS transactions the caller
    gets TransientStoreError (a 503 to retry), having paused well under a second."""
    runs, stubber, pauses = stubbed
    run = new_run()
    for _ in range(CREATE_ATTEMPTS):
        cancelled(stubber, reasons(run, "TransactionConflict"))
    with pytest.raises(TransientStoreError):
        runs.create(run, max_in_flight=10, idempotency=KEY)
    assert CREATE_ATTEMPTS <= 5 and len(pauses) == CREATE_ATTEMPTS - 1
    worst = sum(dynamodb.CREATE_BACKOFF_S * 2**i for i in range(CREATE_ATTEMPTS - 1))
    assert sum(pauses) <= worst < 1.0


def test_a_real_condition_failure_is_not_retried(stubbed):
    """The tenant at its in-flight limit, with no contention: 429 at once."""
    runs, stubber, pauses = stubbed
    run = new_run()
    cancelled(stubber, reasons(run, "None", **{"2": "ConditionalCheckFailed"}))
    with pytest.raises(QuotaExceededError):
        runs.create(run, max_in_flight=10, idempotency=KEY)
    assert pauses == []


@pytest.mark.parametrize("key", [KEY, None], ids=["with a key", "without"])
@pytest.mark.parametrize(
    ("checked", "message"), [(0, "dataset not found"), (1, "eval version not found")], ids=["dataset", "eval"]
)
def test_a_dataset_or_eval_gone_or_being_deleted_is_a_404_not_retried(stubbed, key, checked, message):
    """The transaction's last two items check the run's dataset (present, no ``deleting``
    tombstone) and its eval (present): a failed check is the 404 a read would answer, even
    when the tenant is at its in-flight limit too; nothing is retried."""
    runs, stubber, pauses = stubbed
    run = new_run()
    checks = ["None"] * len(DynamoDBRunRepository.REFERENCES)
    checks[checked] = "ConditionalCheckFailed"
    counters = ["None"] * len(DynamoDBRunRepository.counter_keys(run))
    # (claim,) run, in-flight (at its limit too), counters, the dataset's and the eval's checks
    codes = [
        {"Code": c}
        for c in ["None"] * (key is not None) + ["None", "ConditionalCheckFailed", *counters, *checks]
    ]
    cancelled(stubber, codes)
    with pytest.raises(NotFoundError, match=f"^{message}$"):
        runs.create(run, max_in_flight=10, idempotency=key)
    assert pauses == []


def test_the_transaction_checks_the_dataset_and_the_eval(stubbed):
    """What the 404s above rest on: two ConditionChecks after the counters, on the dataset
    item (present, not being deleted) and on the eval item (present)."""
    runs, stubber, _ = stubbed
    run = new_run()
    seen: list[dict] = []
    stubber.add_response("transact_write_items", {})
    runs.table.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: seen.append(params)
    )
    runs.create(run, max_in_flight=10)
    [params] = seen
    *_, dataset, ev = params["TransactItems"]
    assert dataset["ConditionCheck"]["Key"] == serialize(
        {"PK": f"T#{run.tenant_id}#DS#{run.dataset_id}", "SK": "DS"}
    )
    assert (
        dataset["ConditionCheck"]["ConditionExpression"]
        == "attribute_exists(PK) AND attribute_not_exists(#d)"
    )
    assert dataset["ConditionCheck"]["ExpressionAttributeNames"] == {"#d": "deleting"}
    assert ev["ConditionCheck"]["Key"] == serialize(
        {"PK": f"T#{run.tenant_id}#EVAL#{run.eval_id}", "SK": "EVAL"}
    )
    assert ev["ConditionCheck"]["ConditionExpression"] == "attribute_exists(PK)"


def test_a_transient_fault_outside_a_cancellation_is_not_retried_here(stubbed):
    """Throttling the client's own retries did not clear (or a connection dropped, maybe
    after a commit) is the caller's to retry (the claim makes that safe), not create's."""
    runs, stubber, pauses = stubbed
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
    )
    with pytest.raises(TransientStoreError):
        runs.create(new_run(), max_in_flight=10, idempotency=KEY)
    assert pauses == []
