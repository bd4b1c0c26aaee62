"""Provider rate limits shared by every batch of the deployment, in the single table
(decision 0016; the bucket arithmetic is ``domain.ratelimit``).

Items, per limit key (``provider:model``):

============================  ==============================  ==========================
item                          PK / SK                         attributes
============================  ==============================  ==========================
token bucket                  LIMIT#{key} / BUCKET            requests, tokens, at,
                                                              blocked_until, version, ttl
call slot (concurrency)       LIMIT#{key} / SLOT#{n}          owner, held_until, ttl
============================  ==============================  ==========================

**Bucket**: read (consistent), the call's share reserved with ``domain.ratelimit.reserve``
(into debt if need be), written back on condition that ``version`` is still the one read
(optimistic concurrency: a writer that lost the race re-reads and computes again); the
caller then sleeps until its turn, once, without asking again. A turn later than
``deadline`` is not reserved: TransientScoringError at once, naming the key, rather than
sleeping the batch's time away. The threads of one process reserve one at a time (a lock
per key): they queue in memory, not in lost races at DynamoDB.

**Slots**: ``concurrent`` items ``SLOT#0…`` of the same partition; a call holds one from
``acquire`` to ``settle``. A slot is taken by a conditional write (``attribute_not_exists(PK)
OR held_until < :now``) and leased for ``SLOT_LEASE_S`` (longer than a batch's 300 s
timeout, so a holder that crashed frees it by expiring); ``settle`` deletes it on condition
that the caller still owns it. The slot is taken before the bucket (and held while the
bucket makes the call wait), so a call is charged just before it is sent, never while it
still waits for a slot. Lowering ``concurrent``
leaves the calls holding the slots above it to finish.

**Requests per call** (DynamoDB bills each; every item here is under 1 KB, so a write is 1
write unit and the consistent read of the partition 1 read unit while it is under 4 KB,
some thirty slots), without contention; a key without limits costs nothing:

* ``acquire``: 1 read (GetItem of the bucket; a Query of the key's partition, bucket and
  slots together, when ``concurrent`` is set) + 1 conditional UpdateItem for the bucket
  (when requests or tokens are limited) + 1 for the slot (when ``concurrent`` is set): 2
  or 3. Each lost race costs one read and one write more; each wait, a read per wake-up.
* ``settle``: 1 DeleteItem for the slot (when held) + 1 UpdateItem refunding the tokens
  the estimate over-counted (an atomic ADD, no read; a call that used *more* than its
  estimate is charged by a read and a conditional write): 0 to 2.
* ``back_off``: 1 conditional UpdateItem.

So a model call with all three limits costs 5 requests (1 read, 4 writes) when it is not
contended: negligible next to the model call it guards.

Items carry a ``ttl`` (the table's TTL attribute): a key no longer used disappears a day
after its last call; a slot a week after its lease, whatever happened to its holder.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from assay_service.adapters.dynamodb.table import Table, applied
from assay_service.domain.ratelimit import Bucket, Limits, charge, reserve
from assay_service.errors import TransientScoringError, TransientStoreError

BUCKET_SK = "BUCKET"
# A slot's lease: longer than a scoring batch's 300 s timeout, so a crashed holder frees it.
SLOT_LEASE_S = 330.0
# The longest sleep between two looks at the bucket (a refund may let a call go earlier).
# Added to each sleep, at random, so waiters do not all wake at the same moment.
JITTER_S = 0.02
# Waiting for a slot (nothing says when one frees): polls from the first to the last.
SLOT_POLL_S = (0.05, 1.0)
# How many times a charge after the call (used more than estimated) retries a lost race.
CHARGE_ATTEMPTS = 5
BUCKET_TTL_S = 24 * 3600
SLOT_TTL_S = 7 * 24 * 3600


def limit_pk(key: str) -> str:
    return f"LIMIT#{key}"


def slot_sk(n: int) -> str:
    return f"SLOT#{n}"


def _rounded(value: float) -> float:
    """A stored number: microsecond (and micro-token) precision is plenty, and short."""
    return round(value, 6) + 0.0  # + 0.0: never -0.0


def _bucket(item: dict[str, Any] | None, limits: Limits, now: float) -> tuple[Bucket | None, int | None]:
    """The bucket of an item and its version (None, None: there is no item). An item only
    ``back_off`` has written holds a block but no allowance yet: a full bucket."""
    if item is None:
        return None, None
    blocked = float(item.get("blocked_until") or 0.0)
    if "at" not in item:
        return replace(Bucket.full(limits, now), blocked_until=blocked), item.get("version")
    return (
        Bucket(
            requests=float(item.get("requests") or 0.0),
            tokens=float(item.get("tokens") or 0.0),
            at=float(item["at"]),
            blocked_until=blocked,
        ),
        item.get("version"),
    )


class DynamoDBPermit:
    """A granted call of ``key``: ``settle(used_tokens)`` frees its slot and moves the
    bucket by the difference from the estimate. Settling twice is a no-op."""

    def __init__(
        self,
        limiter: DynamoDBRateLimiter | None,
        key: str,
        limits: Limits,
        estimate: int,
        slot: str | None = None,
        owner: str = "",
    ) -> None:
        self.limiter = limiter
        self.key = key
        self.limits = limits
        self.estimate = estimate
        self.slot = slot
        self.owner = owner
        self._settled = False
        self._lock = threading.Lock()
        self.go_at: float | None = None  # the turn the bucket reserved for the call

    def settle(self, used_tokens: int) -> None:
        """Best effort: the model call has happened, and failing it now for its bookkeeping
        would only make the batch call the model again. A store error here is swallowed —
        the slot's lease then frees it, and a refund not made only errs on the safe side."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
        if self.limiter is None:
            return
        try:
            if self.slot is not None:
                self.limiter._free(self.key, self.slot, self.owner)
            if self.limits.tokens_per_minute is not None:
                self.limiter._charge(self.key, self.limits, max(0, used_tokens) - self.estimate)
        except TransientStoreError:
            pass


class DynamoDBRateLimiter:
    """``ports.RateLimiter`` over the single table (module docstring: items and costs).

    ``clock``, ``sleep`` and ``rng`` are ``time.time``, ``time.sleep`` and
    ``random.random`` unless a test passes its own."""

    def __init__(
        self,
        table: Table,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.table = table
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        # One thread of this process at a time takes from a key's bucket; the others queue
        # here rather than at DynamoDB, where every waiter polling one item would lose race
        # after race (each loss a read and a write) and slow every batch's calls.
        self._queues: dict[str, threading.Lock] = {}
        self._queues_lock = threading.Lock()

    def _queue(self, key: str) -> threading.Lock:
        with self._queues_lock:
            return self._queues.setdefault(key, threading.Lock())

    # -------------------------------------------------------------- the port
    def acquire(self, key: str, limits: Limits, *, tokens: int, deadline: float) -> DynamoDBPermit:
        """Wait until a call of ``key`` may go (a slot held, the bucket charged ``tokens``);
        TransientScoringError when it could not before ``deadline`` (``time.time()``)."""
        tokens = max(0, tokens)
        if limits.unlimited:
            return DynamoDBPermit(None, key, limits, tokens)
        slot, owner, first, go_at = None, uuid.uuid4().hex, None, self.clock()
        try:
            if limits.concurrent is not None:
                slot, first = self._take_slot(key, limits.concurrent, owner, deadline)
            if limits.requests_per_minute is not None or limits.tokens_per_minute is not None:
                with self._queue(key):
                    # the partition read for the slot holds the bucket (or shows there is
                    # none); a thread that queued here reads it again
                    go_at = self._take_bucket(key, limits, tokens, deadline, first, read=slot is not None)
                self.sleep(max(0.0, go_at - self.clock()))  # the reserved turn, outside the queue
        except BaseException:
            if slot is not None:
                with contextlib.suppress(TransientStoreError):  # else the lease frees it
                    self._free(key, slot, owner)
            raise
        permit = DynamoDBPermit(self, key, limits, tokens, slot, owner)
        permit.go_at = go_at
        return permit

    def back_off(self, key: str, seconds: float) -> None:
        """Every caller of ``key`` waits until ``seconds`` from now (a later block stays):
        one conditional UpdateItem, no read."""
        until = _rounded(self.clock() + max(0.0, seconds))
        # not applied: a later block is already set
        applied(
            lambda: self.table.update(
                limit_pk(key),
                BUCKET_SK,
                expression="SET #b = :b, #ttl = :ttl ADD #v :one",
                names={"#b": "blocked_until", "#v": "version", "#ttl": "ttl"},
                values={":b": until, ":one": 1, ":ttl": int(until) + BUCKET_TTL_S},
                condition="attribute_not_exists(#b) OR #b < :b",
            )
        )

    # -------------------------------------------------------------- the bucket
    def _take_bucket(
        self,
        key: str,
        limits: Limits,
        tokens: int,
        deadline: float,
        item: dict[str, Any] | None,
        *,
        read: bool,
    ) -> float:
        """Reserve the call's share of the bucket (``domain.ratelimit.reserve``): returns
        the moment (``clock``) the call may go. ``read``: ``item`` is the bucket as just
        read (None: none yet). One read and one conditional write when no other caller of
        the key writes in between (a lost race reads again)."""
        while True:
            if not read:
                item = self.table.get(limit_pk(key), BUCKET_SK)
            read = False
            now = self.clock()
            state, version = _bucket(item, limits, now)
            after, wait = reserve(state, limits, now, requests=1, tokens=tokens)
            if after is None or now + wait > deadline:
                raise TransientScoringError(
                    f"rate limit of {key}: no call allowed before the deadline "
                    f"(next in {wait:.1f}s, {max(0.0, deadline - now):.1f}s left)",
                    retry_after=None if math.isinf(wait) else wait,
                )
            if self._write(key, after, version, now):
                return now + wait
            self.sleep(self.rng() * JITTER_S)  # lost a race: read again

    def _write(self, key: str, bucket: Bucket, version: int | None, now: float) -> bool:
        """Store ``bucket`` if the item is still at ``version``: whether it was."""
        names = {"#r": "requests", "#t": "tokens", "#a": "at", "#b": "blocked_until", "#v": "version"}
        values: dict[str, Any] = {
            ":r": _rounded(bucket.requests),
            ":t": _rounded(bucket.tokens),
            ":a": _rounded(bucket.at),
            ":b": _rounded(bucket.blocked_until),
            ":nv": (version or 0) + 1,
            ":ttl": int(now) + BUCKET_TTL_S,
        }
        if version is None:
            condition = "attribute_not_exists(PK)"
        else:
            condition = "#v = :v"
            values[":v"] = version
        return applied(
            lambda: self.table.update(
                limit_pk(key),
                BUCKET_SK,
                expression="SET #r = :r, #t = :t, #a = :a, #b = :b, #v = :nv, #ttl = :ttl",
                names={**names, "#ttl": "ttl"},
                values=values,
                condition=condition,
            )
        )

    def _charge(self, key: str, limits: Limits, tokens: int) -> None:
        """Move the token axis by ``tokens`` (negative: a refund). A refund is one atomic
        ADD: added to the stored allowance it gives what refunding at the current time
        would (the next refill caps it). A further charge is read, computed and written."""
        if tokens == 0:
            return
        if tokens < 0:
            # not applied: no bucket (expired), nothing to refund into
            applied(
                lambda: self.table.update(
                    limit_pk(key),
                    BUCKET_SK,
                    expression="ADD #t :d, #v :one",
                    names={"#t": "tokens", "#v": "version", "#a": "at"},
                    values={":d": -tokens, ":one": 1},
                    condition="attribute_exists(#a)",
                )
            )
            return
        for _ in range(CHARGE_ATTEMPTS):
            item = self.table.get(limit_pk(key), BUCKET_SK)
            now = self.clock()
            state, version = _bucket(item, limits, now)
            if self._write(key, charge(state, limits, now, tokens), version, now):
                return
            self.sleep(self.rng() * JITTER_S)

    # -------------------------------------------------------------- slots
    def _partition(self, key: str) -> list[dict[str, Any]]:
        """The key's bucket and slots: one consistent Query (Table.query reads eventually
        consistent; here a stale slot would only cost a failed write, but a stale bucket a
        lost race too)."""
        return list(self.table.query_all(pk=limit_pk(key), consistent=True))

    def _take_slot(
        self, key: str, concurrent: int, owner: str, deadline: float
    ) -> tuple[str, dict[str, Any] | None]:
        """Hold a free slot of ``key``; returns it and the bucket item read meanwhile."""
        poll = SLOT_POLL_S[0]
        while True:
            items = self._partition(key)
            now = self.clock()
            bucket = next((i for i in items if i["SK"] == BUCKET_SK), None)
            held = {i["SK"] for i in items if float(i.get("held_until") or 0.0) >= now}
            free = [slot_sk(n) for n in range(max(0, concurrent)) if slot_sk(n) not in held]
            if free and now <= deadline:
                sk = free[int(self.rng() * len(free)) % len(free)]  # spread the contenders
                if self._hold(key, sk, owner, now):
                    return sk, bucket
                self.sleep(self.rng() * JITTER_S)  # lost it to another caller: look again
                continue
            if now + poll > deadline or concurrent <= 0:
                raise TransientScoringError(
                    f"rate limit of {key}: all {concurrent} call slots stayed held until the deadline"
                )
            self.sleep(poll + self.rng() * JITTER_S)
            poll = min(poll * 2, SLOT_POLL_S[1])

    def _hold(self, key: str, sk: str, owner: str, now: float) -> bool:
        return applied(
            lambda: self.table.update(
                limit_pk(key),
                sk,
                expression="SET #o = :o, #h = :h, #ttl = :ttl",
                names={"#o": "owner", "#h": "held_until", "#ttl": "ttl"},
                values={
                    ":o": owner,
                    ":h": _rounded(now + SLOT_LEASE_S),
                    ":now": _rounded(now),
                    ":ttl": int(now + SLOT_LEASE_S) + SLOT_TTL_S,
                },
                condition="attribute_not_exists(PK) OR #h < :now",
            )
        )

    def _free(self, key: str, sk: str, owner: str) -> None:
        """Delete the slot if ``owner`` still holds it (its lease may have expired and
        another caller taken it: then it is theirs)."""
        applied(
            lambda: self.table.delete(
                limit_pk(key), sk, condition="#o = :o", names={"#o": "owner"}, values={":o": owner}
            )
        )
