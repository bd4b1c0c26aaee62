"""Count the billable AWS requests the code makes, on the moto server side.

A WSGI middleware in front of moto's app sees every request any client makes — the HTTP
front, the handlers in their worker processes, and the Step Functions interpreter's own
clients — and counts them by service and by billing class:

* DynamoDB request units, computed with DynamoDB's own rules from the items' sizes
  (writes: 1 WRU per started KB, ×2 in a transaction; reads: 1 RRU per started 4 KB,
  ½ when eventually consistent, ×2 in a transaction; a Query is billed on the sum of the
  items it returns). moto reports no real consumed capacity, so the sizes are taken from
  the requests and responses, and for an update from the item as stored afterwards;
* S3 requests by price class: PUT/COPY/POST/LIST vs GET/HEAD (DELETE is free);
* Secrets Manager API calls; Lambda Invoke calls (the runtime hook counts the durations).

Local tooling only (the cost model's measurements); never part of the Lambda package.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from assay_local.moto_requests import WsgiApp, read_body, service_and_operation

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


# ------------------------------------------------------------------ item sizes
def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, by DynamoDB's item-size rules."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(base64.b64decode(v)) if isinstance(v, str) else len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(_number_size(x) for x in v)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in v)
    if kind == "L":
        return 3 + sum(attribute_size(x) + 1 for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(x) + 1 for k, x in v.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + attribute_size(v) for k, v in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


# ------------------------------------------------------------------ the meter
class Meter:
    """Thread-safe counters; ``snapshot()`` copies them, ``since(before)`` subtracts."""

    def __init__(self, stored_item: Callable[[str, dict[str, Any]], dict[str, Any] | None]) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, float] = defaultdict(float)
        self._stored_item = stored_item

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counts[name] += amount

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    def since(self, before: dict[str, float]) -> dict[str, float]:
        now = self.snapshot()
        return {
            k: now.get(k, 0) - before.get(k, 0)
            for k in sorted(set(now) | set(before))
            if now.get(k, 0) - before.get(k, 0)
        }

    # ----------------------------------------------------------- DynamoDB
    def dynamodb(self, op: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        self.add(**{"dynamodb.requests": 1, f"dynamodb.{op}": 1})
        if op in READS:
            self.add(**{"dynamodb.rru": self._read_units(op, request, response)})
        else:
            self.add(**{"dynamodb.wru": self._write_units(op, request)})

    def _read_units(self, op: str, request: dict[str, Any], response: dict[str, Any]) -> float:
        consistent = bool(request.get("ConsistentRead"))
        if op == "GetItem":
            return read_units(item_size(response.get("Item")), consistent)
        if op in ("Query", "Scan"):
            return read_units(sum(item_size(i) for i in response.get("Items", [])), consistent)
        if op == "BatchGetItem":
            return sum(
                read_units(item_size(i)) for items in response.get("Responses", {}).values() for i in items
            )
        # TransactGetItems: two strongly consistent reads' worth per item
        return sum(2 * read_units(item_size(r.get("Item")), True) for r in response.get("Responses", []))

    def _write_units(self, op: str, request: dict[str, Any]) -> float:
        if op == "PutItem":
            return write_units(item_size(request["Item"]))
        if op == "UpdateItem":
            return write_units(item_size(self._stored_item(request["TableName"], request["Key"])))
        if op == "DeleteItem":
            return 1
        if op == "BatchWriteItem":
            return sum(
                write_units(item_size(w["PutRequest"]["Item"])) if "PutRequest" in w else 1
                for writes in request.get("RequestItems", {}).values()
                for w in writes
            )
        if op == "TransactWriteItems":
            total = 0
            for action in request.get("TransactItems", []):
                ((kind, body),) = action.items()
                if kind == "Put":
                    size = item_size(body["Item"])
                elif kind in ("Update", "ConditionCheck"):
                    size = item_size(self._stored_item(body["TableName"], body["Key"]))
                else:
                    size = 0
                total += 2 * write_units(size)
            return total
        return 0  # control-plane calls (CreateTable, DescribeTable, ...) are not billed per call

    # ----------------------------------------------------------- S3
    def s3(self, method: str, path: str, query: str) -> None:
        parts = [p for p in path.split("/") if p]
        if method == "DELETE":
            cls = "free"
        elif method in ("PUT", "POST", "COPY") or (method == "GET" and len(parts) <= 1):
            cls = "tier1"  # PUT, COPY, POST, LIST
        else:
            cls = "tier2"  # GET, HEAD
        self.add(**{"s3.requests": 1, f"s3.{cls}": 1})


class MeteringApp:
    """WSGI middleware: pass every request through, count the billable ones."""

    def __init__(self, app: WsgiApp, meter: Meter) -> None:
        self.app = app
        self.meter = meter

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service, op = service_and_operation(environ)
        if service == "s3":
            self.meter.s3(
                environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
            )
        elif service == "secretsmanager":
            self.meter.add(**{"secretsmanager.requests": 1, f"secretsmanager.{op}": 1})
        elif service == "lambda" and environ.get("PATH_INFO", "").endswith("/invocations"):
            self.meter.add(**{"lambda.invoke_requests": 1})
        if service != "dynamodb":
            return self.app(environ, start_response)
        body = read_body(environ)
        status: list[str] = []

        def capture(code: str, headers: list[Any], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        chunks = list(self.app(environ, capture))
        try:
            request = json.loads(body or b"{}")
            response = json.loads(b"".join(chunks) or b"{}") if status[0].startswith("2") else {}
            self.meter.dynamodb(op, request, response)
        except Exception:
            self.meter.add(**{"dynamodb.unmetered": 1})
        return chunks


def moto_stored_item(account_id: str, region: str) -> Callable[[str, dict[str, Any]], dict[str, Any] | None]:
    """The item as moto stores it now (for an update's billed size)."""
    from moto.dynamodb.models import dynamodb_backends

    def stored(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = dynamodb_backends[account_id][region].get_item(table, key)
        return found.to_json()["Attributes"] if found is not None else None

    return stored
