"""Runs: creating one (against the tenant's in-flight quota, with its Idempotency-Key),
listing and counting them, moving their status, and recording their batches."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.aws_errors import TRANSIENT_CANCELLATION_REASONS, is_transient_cancellation
from assay_service.adapters.dynamodb.batches import join_batches, pack_parts
from assay_service.adapters.dynamodb.codec import _JSON_FIELDS, item_model, model_item
from assay_service.adapters.dynamodb.counters import RUN_COUNTERS, count_op, counter_keys, in_flight_op
from assay_service.adapters.dynamodb.datasets import DELETING
from assay_service.adapters.dynamodb.idempotency import claim_op, replay
from assay_service.adapters.dynamodb.keys import (
    BATCH_PREFIX,
    batch_sk,
    counter_sk,
    created_sk,
    dataset_pk,
    eval_pk,
    part_sk,
    run_count_pk,
    run_partition,
    run_pk,
)
from assay_service.adapters.dynamodb.table import Table, _pause, cancellation_codes
from assay_service.domain.cursors import decode_cursor, encode_cursor
from assay_service.domain.ids import run_key
from assay_service.errors import NotFoundError, QuotaExceededError, TransientStoreError
from assay_service.models.domain import TERMINAL_STATUSES, Evaluation, Run, utcnow
from assay_service.models.workflow import BatchOutcome
from assay_service.ports import RunQuery  # the services' value type; re-exported here

# A run's create transaction cancelled by contention alone (e.g. ``TransactionConflict``
# while a concurrent request with the same Idempotency-Key commits its claim) is tried again
# at most this many times in all, after full-jitter pauses of at most 20, 40, 80, 160 ms
# (≤ 0.3 s in all).
CREATE_ATTEMPTS = 5
CREATE_BACKOFF_S = 0.02

SET_STATUS_ATTEMPTS = 4  # pending → running → a finished state: at most two moves to chase

RUN_INDEX_PRIORITY = (  # most selective first
    ("eval_version_id", "RunsByEvalVersion"),
    ("dataset_id", "RunsByDataset"),
    ("eval_id", "RunsByEval"),
    ("project_id", "RunsByProject"),
    ("status", "RunsByStatus"),
)


@dataclass(frozen=True)
class _Placement:
    """Where a RunQuery is served: one RunsBy* index partition of the tenant (the most
    selective criterion's), with equality filters on the projected attributes for the
    other criteria."""

    index: str
    partition: str
    filters: dict[str, str]

    @classmethod
    def of(cls, query: RunQuery) -> _Placement:
        chosen = next(((name, index) for name, index in RUN_INDEX_PRIORITY if name in query.criteria), None)
        if chosen is None:
            return cls("RunsByTenant", run_partition(query.tenant_id), dict(query.criteria))
        name, index = chosen
        filters = {k: v for k, v in query.criteria.items() if k != name}
        return cls(index, run_partition(query.tenant_id, query.criteria[name]), filters)


class DynamoDBRunRepository:
    # What makes a batch write happen once: a second delivery finds the item and changes
    # nothing (the fault suite runs a subclass without it, which must double-count).
    BATCH_ONCE = "attribute_not_exists(PK)"

    counter_keys = staticmethod(counter_keys)

    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def _pk(tenant_id: UUID, key: str) -> str:
        return run_pk(tenant_id, key)

    def index_keys(self, run: Run) -> dict[str, str]:
        t = run.tenant_id
        return {
            "RunsByTenant": run_partition(t),
            "RunsByEval": run_partition(t, run.eval_id),
            "RunsByEvalVersion": run_partition(t, run.eval_version_id),
            "RunsByDataset": run_partition(t, run.dataset_id),
            "RunsByProject": run_partition(t, run.project_id),
            "RunsByStatus": run_partition(t, run.status),
            "RunCreated": created_sk(run.created_at.isoformat(), run.id),
        }

    def create(self, run: Run, *, max_in_flight: int, idempotency: tuple[str, str] | None = None) -> UUID:
        """Store a new run and count it against the tenant's runs in flight, in one
        transaction (QuotaExceededError at the limit). With ``idempotency=(key, hash)``
        the key is claimed in the same transaction: a replay returns the run that key
        created (same hash) or raises ConflictError (another hash). Returns the id of the
        run that stands.

        The same transaction checks that the run's dataset exists and is not being deleted
        (no ``deleting`` tombstone) and that its eval exists (NotFoundError otherwise, as
        the read a moment later would answer): a delete either sees this run in the run
        counter its guard checks, or this run sees the delete (decision 0012).

        A cancellation caused by contention alone (two requests with one key at once: the
        second's claim conflicts with the first's commit) is tried again, a bounded few
        times with jittered pauses; once the first has committed, the retry finds its claim
        and replays its run."""
        item = model_item(run, PK=self._pk(run.tenant_id, run_key(run.id)), SK="RUN", **self.index_keys(run))
        ops = [
            self.table.put_op(item, condition="attribute_not_exists(PK)"),
            in_flight_op(self.table, run.tenant_id, +1, max_in_flight),
            *(count_op(self.table, run.tenant_id, sk, +1) for sk in counter_keys(run)),
            *self._reference_checks(run),
        ]
        claim_pk = None
        if idempotency is not None:
            key, request_hash = idempotency
            claim_pk, claim = claim_op(self.table, run, key, request_hash)
            ops.insert(0, claim)
        # (claim,) run, in-flight, counters (no condition), then the reference checks
        in_flight = 2 if claim_pk else 1
        references = len(ops) - len(self.REFERENCES)
        last: Exception | None = None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self.table.transact(ops)
                return run.id
            except TransientStoreError as exc:
                # Cancelled by contention alone, nothing written: the same transaction may
                # be tried again (other transient faults, e.g. a dropped connection after a
                # commit, are the caller's to retry).
                cause = exc.__cause__
                if not (
                    isinstance(cause, ClientError) and is_transient_cancellation(cancellation_codes(cause))
                ):
                    raise
                last = exc
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if claim_pk and codes[:1] == ["ConditionalCheckFailed"]:
                    return self._replay(claim_pk, idempotency[1], exc)  # type: ignore[index]
                if not (claim_pk and codes[:1] and codes[0] in TRANSIENT_CANCELLATION_REASONS):
                    refusal = self._refusal(codes, in_flight, references, max_in_flight)
                    if refusal is not None:
                        raise refusal from exc
                    raise
                # The key's claim is in a concurrent request's transaction: whether this
                # request replays that run or creates its own (or is over the quota) is
                # known once that one has committed or not. Nothing was written.
                last = exc
            if attempt + 1 < CREATE_ATTEMPTS:
                _pause(random.uniform(0, CREATE_BACKOFF_S * 2**attempt))
        raise TransientStoreError(
            f"DynamoDB kept cancelling the run's transaction for contention "
            f"({CREATE_ATTEMPTS} attempts); retry"
        ) from last

    def _reference_checks(self, run: Run) -> list[dict[str, Any]]:
        """ConditionChecks that what the run points at still stands, in ``REFERENCES``
        order: its dataset (and no delete of it has begun) and its eval (an eval's delete
        removes the eval item with its versions, in one transaction)."""
        return [
            self.table.check_op(
                dataset_pk(run.tenant_id, run.dataset_id),
                "DS",
                condition="attribute_exists(PK) AND attribute_not_exists(#d)",
                names={"#d": DELETING},
            ),
            self.table.check_op(
                eval_pk(run.tenant_id, run.eval_id), "EVAL", condition="attribute_exists(PK)"
            ),
        ]

    # What create's ConditionChecks find still standing, in their order, each named as the
    # read a moment later would answer when it does not (NotFoundError).
    REFERENCES = ("dataset", "eval version")

    @classmethod
    def _refusal(
        cls, codes: list[str], in_flight: int, references: int, max_in_flight: int
    ) -> Exception | None:
        """What a create transaction's failed condition means: a dataset or eval gone (or
        being deleted) is a 404, the tenant's in-flight count at its limit a 429; None
        otherwise."""
        checked = codes[references : references + len(cls.REFERENCES)]
        for kind, code in zip(cls.REFERENCES, checked, strict=False):
            if code == "ConditionalCheckFailed":
                return NotFoundError(kind)
        if codes[in_flight : in_flight + 1] == ["ConditionalCheckFailed"]:
            return QuotaExceededError(
                f"the tenant already has {max_in_flight} runs pending or running; wait for one to finish",
                details={"limit": max_in_flight},
            )
        return None

    def _replay(self, claim_pk: str, request_hash: str, exc: ClientError) -> UUID:
        return replay(self.table, claim_pk, request_hash, exc, lambda t, r: self.get(t, r) is not None)

    def get(self, tenant_id: UUID, run_id: UUID) -> Run | None:
        item = self.table.get(self._pk(tenant_id, run_key(run_id)), "RUN")
        if not item or item.get("id") != str(run_id):
            return None
        return item_model(Run, item)

    def get_by_key(self, tenant_id: UUID, key: str) -> Run | None:
        item = self.table.get(self._pk(tenant_id, key), "RUN")
        return item_model(Run, item) if item else None

    def list_page(self, query: RunQuery) -> tuple[list[Run], str | None]:
        """One page of runs, newest first: keys from the index, items by BatchGetItem. The
        query's cursor must name the partition that serves it (a 400 otherwise)."""
        where = _Placement.of(query)
        start = decode_cursor(query.cursor, partition=(where.index, where.partition))
        skip = 0 if query.cursor else query.offset
        keys: list[dict[str, Any]] = []
        more = True
        while len(keys) < query.limit and more:
            page, start = self.table.query(
                pk=where.partition,
                index=where.index,
                forward=False,
                limit=min(query.limit + skip, 1000),
                start=start,
                filters=where.filters,
            )
            more = start is not None
            dropped = min(skip, len(page))
            skip -= dropped
            taken = page[dropped:][: query.limit - len(keys)]
            keys.extend(taken)
            more = more or len(page) - dropped > len(taken)
        last = None
        if keys and len(keys) == query.limit and more:
            # Resume after the last item returned (not after the last item read).
            tail = keys[-1]
            last = {
                "PK": tail["PK"],
                "SK": tail["SK"],
                where.index: where.partition,
                "RunCreated": tail["RunCreated"],
            }
        items = self.table.batch_get([(k["PK"], k["SK"]) for k in keys])
        return [item_model(Run, i) for i in items], encode_cursor(last)

    def count(self, query: RunQuery) -> int:
        """How many runs match: one GetItem of a counter for no criterion or one; combined
        criteria count the chosen index partition (Select=COUNT, filtered), so they cost
        what that partition holds."""
        if len(query.criteria) > 1 or not set(query.criteria) <= set(RUN_COUNTERS):
            where = _Placement.of(query)
            return self.table.count(pk=where.partition, index=where.index, filters=where.filters)
        sk = next((counter_sk(k, v) for k, v in query.criteria.items()), "ALL")
        item = self.table.get(run_count_pk(query.tenant_id), sk)
        return int(item["runs"]) if item else 0

    def backfill_counters(self, tenant_id: UUID) -> dict[str, int]:
        """Recompute the tenant's run counters from its runs (data written before the
        counters existed). Reads the tenant's RunsByTenant partition; run it while the tenant
        schedules nothing, since it overwrites the counters with what it read."""
        counts: dict[str, int] = {}
        for row in self.table.query_all(pk=run_partition(tenant_id), index="RunsByTenant"):
            for sk in ["ALL", *(counter_sk(name, row[name]) for name in RUN_COUNTERS)]:
                counts[sk] = counts.get(sk, 0) + 1
        stale = self.table.query_all(pk=run_count_pk(tenant_id))
        for item in stale:
            counts.setdefault(item["SK"], 0)
        for sk, n in counts.items():
            self.table.put({"PK": run_count_pk(tenant_id), "SK": sk, "runs": n})
        return counts

    def set_status(
        self, run: Run, status: str, *, expect: Sequence[str], fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Move the run to ``status`` (with ``fields``) if it is in one of ``expect``.

        Returns False when the run was not in an expected state: the transitions are
        guarded in the write itself, so a cancel and a finalize cannot both win. The write
        names the exact state it leaves (the run's known one, re-read when the guard says it
        moved on while it is still expected), so the same transaction can move one run from
        that state's counter to the new one's. A move from an unfinished to a finished state
        frees the tenant's in-flight slot in that transaction too, so neither count can leak
        nor be moved twice."""
        current: Run | None = run
        if run.status not in expect:
            current = self.get(run.tenant_id, run.id)
        for _ in range(SET_STATUS_ATTEMPTS):
            if current is None or current.status not in expect:
                return False
            try:
                self._move(current, status, fields)
                return True
            except ClientError as exc:
                if cancellation_codes(exc)[:1] != ["ConditionalCheckFailed"]:
                    raise
            current = self.get(run.tenant_id, run.id)
        raise TransientStoreError(f"run {run.id} kept changing status; retry")

    def _move(self, run: Run, status: str, fields: Mapping[str, Any] | None) -> None:
        """One transaction: the run from exactly ``run.status`` to ``status``, its status
        counters and (when it finishes) the tenant's in-flight count.

        A field set to None is REMOVEd, not SET: a stored run holds no attribute for an
        unset field (``serialize`` drops None on a put too), and both read back as None."""
        changes = {
            "status": status,
            "updated_at": utcnow().isoformat(),
            "RunsByStatus": run_partition(run.tenant_id, status),
            **(fields or {}),
        }
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, (name, value) in enumerate(changes.items()):
            names[f"#f{i}"] = name
            if name in _JSON_FIELDS:
                value = json.dumps(value, separators=(",", ":"))
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":f{i}"] = value
                sets.append(f"#f{i} = :f{i}")
        values[":old"] = run.status
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        ops = [
            self.table.update_op(
                self._pk(run.tenant_id, run_key(run.id)),
                "RUN",
                expression=expression,
                names=names,
                values=values,
                condition="#f0 = :old",
            )
        ]
        if status != run.status:
            ops += [
                count_op(self.table, run.tenant_id, counter_sk("status", run.status), -1),
                count_op(self.table, run.tenant_id, counter_sk("status", status), +1),
            ]
        if status in TERMINAL_STATUSES and run.status not in TERMINAL_STATUSES:
            ops.append(in_flight_op(self.table, run.tenant_id, -1))
        self.table.transact(ops)

    def delete(self, run: Run) -> bool:
        """Delete a run: its batch items, then in one transaction the run item (only while
        it is still in ``run.status``) and its place in every run counter, so a counter
        moves exactly once (an unfinished run would free its in-flight slot too; the API
        only deletes finished ones). False when the run changed status or is gone."""
        pk = self._pk(run.tenant_id, run_key(run.id))
        self.table.batch_delete([(k["PK"], k["SK"]) for k in self.table.keys(pk=pk, sk_prefix=BATCH_PREFIX)])
        ops = [
            self.table.delete_op(
                pk, "RUN", condition="#s = :s", names={"#s": "status"}, values={":s": run.status}
            ),
            *(count_op(self.table, run.tenant_id, sk, -1) for sk in counter_keys(run)),
        ]
        if run.status not in TERMINAL_STATUSES:
            ops.append(in_flight_op(self.table, run.tenant_id, -1))
        try:
            self.table.transact(ops)
        except ClientError as exc:
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def record_batch(
        self,
        run: Run,
        index: int,
        *,
        completed: int,
        failed: int,
        records: list[dict[str, Any]],
        evaluations: Sequence[Evaluation],
        now: str,
        usage: Sequence[Mapping[str, Any]] = (),
        cache: tuple[int, int] = (0, 0),
    ) -> BatchOutcome:
        """Write a batch's evaluations and move the run's counters in ONE transaction.

        Returns ``"recorded"``, ``"duplicate"`` (this batch was already recorded: a retry
        or a duplicate delivery — nothing is counted twice) or ``"inactive"`` (the run is
        no longer running, e.g. cancelled: its counts stay frozen).

        The compressed batch goes in the ``B#{index}`` item; past ``BATCH_PART_BYTES`` the
        rest goes in continuation items ``B#{index}#{n:03}`` in the same transaction (each
        conditional too), so no batch can exceed DynamoDB's 400 KB item limit and a batch
        is either wholly there or not at all.

        ``usage`` (the batch's model calls per model) is kept with the batch for finalize;
        ``cache`` (hits, misses of the response cache) moves the run's counters with the rest.
        """
        pk = self._pk(run.tenant_id, run_key(run.id))
        payload: dict[str, Any] = {
            "records": records,
            "evaluations": [e.model_dump(mode="json") for e in evaluations],
        }
        if usage:
            payload["usage"] = list(usage)
        parts = pack_parts(index, payload)
        base = {
            "PK": pk,
            "tenant_id": str(run.tenant_id),
            "run_id": str(run.id),
            "batch": index,
            "created_at": now,
        }
        ops = [
            self.table.put_op(
                {
                    **base,
                    "SK": batch_sk(index),
                    "completed": completed,
                    "failed": failed,
                    "parts": len(parts),
                    "data": parts[0],
                },
                condition=self.BATCH_ONCE,
            ),
            self.table.update_op(
                pk,
                "RUN",
                expression="ADD completed_count :c, failed_count :f, cache_hits :h, cache_misses :m "
                "SET updated_at = :now",
                names={"#status": "status"},
                values={
                    ":c": completed,
                    ":f": failed,
                    ":h": cache[0],
                    ":m": cache[1],
                    ":now": now,
                    ":running": "running",
                },
                condition="#status = :running",
            ),
        ]
        ops += [
            self.table.put_op({**base, "SK": part_sk(index, n), "data": part}, condition=self.BATCH_ONCE)
            for n, part in enumerate(parts[1:], start=1)
        ]
        try:
            self.table.transact(ops)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                return "duplicate"
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return "inactive"
            raise
        return "recorded"

    def batch_recorded(self, run: Run, index: int) -> bool:
        return self.table.get(self._pk(run.tenant_id, run_key(run.id)), batch_sk(index)) is not None

    def get_batch(self, tenant_id: UUID, key: str, index: int) -> dict[str, Any] | None:
        return next(self._batches(self._pk(tenant_id, key), first=index, last=index), None)

    def iter_batches(self, run: Run, *, first: int = 0) -> Iterator[dict[str, Any]]:
        """The recorded batches of the run from index ``first`` on, in order, one at a time;
        each with ``parts``, the items it was read from."""
        return self._batches(self._pk(run.tenant_id, run_key(run.id)), first=first)

    def _batches(self, pk: str, *, first: int, last: int | None = None) -> Iterator[dict[str, Any]]:
        """Batch items in key order (``B#{i}`` then its parts ``B#{i}#{n:03}``), joined."""
        prefix = BATCH_PREFIX if last is None else batch_sk(last)
        return join_batches(self.table.query_all(pk=pk, sk_prefix=prefix, sk_from=batch_sk(first)))
