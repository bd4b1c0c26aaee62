"""Hostile input to every JSON write route and to the list routes' queries, through the
HTTP front in-process: absurd nesting, huge and non-finite numbers, Unicode edge cases
(lone surrogates, invalid UTF-8, control and bidi characters), spreadsheet formulas,
wrong types, oversized strings.

Each case must get an answer the OpenAPI document describes (status and body schema),
never a 5xx; a refusal is the error envelope with a message; and whatever is accepted
must be readable back (the object's GET answers 200 and conforms too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from assay_local.wsgi import wsgi_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from tests.functional.harness import OWNER_KEY, ROOT

CASES_PER_ROUTE = 420  # x 13 routes: >= 5,000 hostile cases a run
HOLE = "__HOSTILE__"
DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())


# ------------------------------------------------------------------ hostile JSON text
def _nested(depth: int, kind: str) -> str:
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _escaped_surrogate(code: int) -> str:
    return f'"x\\u{code:04x}y"'


_NUMBERS = st.one_of(
    st.integers(20, 6_000).map(lambda n: "9" * n),
    st.integers(20, 6_000).map(lambda n: "-" + "1" * n),
    st.sampled_from(
        [
            "NaN",
            "-NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "-1e999",
            "1E400",
            "0.1e99999",
            "1e-999",
            "-0",
            "0.000000000000000000000000000000000000001",
            "123456789012345678901234567890123456789",
            "1.0",
            "-1",
            "2",
        ]
    ),
)
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x10FFFF), max_size=80)
_CONTROL = st.text(alphabet=st.characters(max_codepoint=0x9F), min_size=1, max_size=40)
_EDGES = st.sampled_from(
    [
        "\u202e\u0645reversed",
        "\ufeffbom",
        "zero\u200bwidth",
        "\u0000nul",
        "\x1b[31mred\x1b[0m",
        "bell\x07",
        "a\r\nb",
        "\U0001f600\U0001f4a9",
        "e\u0301\u0301\u0301",
        "\uffff\ufffe",
        '=HYPERLINK("http://attacker.example","click")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1",
        "\r=1",
        "<script>alert(1)</script>",
        "'; DROP TABLE runs; --",
        "../../etc/passwd",
        "%00",
        "${jndi:ldap://x}",
        "{{record.input}}",
        "\\",
        '"',
    ]
)
_STRINGS = st.one_of(
    _TEXT.map(json.dumps),
    _CONTROL.map(json.dumps),
    _EDGES.map(json.dumps),
    st.integers(0xD800, 0xDFFF).map(_escaped_surrogate),
    st.integers(1_000, 300_000).map(lambda n: json.dumps("=" + "a" * n)),
)
_STRUCTURES = st.one_of(
    st.tuples(st.integers(20, 3_000), st.sampled_from("[{")).map(lambda t: _nested(*t)),
    st.sampled_from(
        [
            "true",
            "false",
            "null",
            "[]",
            "{}",
            '"10"',
            '"0.5"',
            '""',
            "[1,2,3]",
            '{"": {}}',
            '{"a": []}',
            "[[[]]]",
        ]
    ),
    st.integers(1, 2_000).map(lambda n: "[" + ",".join(["{}"] * n) + "]"),
)
HOSTILE = st.one_of(_NUMBERS, _STRINGS, _STRUCTURES)
# Whole bodies that are not JSON at all, or not UTF-8.
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"{",
            b"}",
            b"[",
            b'{"a":',
            b"\xff\xfe{}",
            b"\xc0\xaf",
            b"{}" * 5_000,
            b"\x00",
            b'{"records": [' + b"{}," * 20_000 + b"{}]}",
        ]
    ),
)


# ------------------------------------------------------------------ routes
@dataclass(frozen=True)
class Route:
    method: str
    template: str  # OpenAPI path
    bodies: tuple[str, ...] = ()  # JSON texts with one HOLE each
    queries: tuple[str, ...] = ()  # query parameters that get a hostile value
    read_back: str | None = None  # GET path (with {new}) that must serve what a 2xx created


@dataclass(frozen=True)
class Ids:
    dataset: str
    eval: str
    eval_version: str
    run: str


def _routes() -> list[Route]:
    evv = '"EVV"'
    return [
        Route(
            "POST",
            "/v1/datasets",
            (
                f'{{"name": {HOLE}}}',
                f'{{"name": "n", "description": {HOLE}}}',
                f'{{"name": "n", "project_id": {HOLE}}}',
                HOLE,
            ),
            read_back="/v1/datasets/{new}",
        ),
        Route(
            "POST",
            "/v1/datasets/{id}/versions",
            (
                f'{{"records": [{{"id": "a", "output": {HOLE}}}]}}',
                f'{{"records": [{{"id": "a", "metadata": {{"k": {HOLE}}}}}]}}',
                f'{{"records": [{{"metadata": {HOLE}}}]}}',
                f'{{"records": [{{"id": {HOLE}}}]}}',
                f'{{"records": [{{"input": "q", "golden_answer": {HOLE}}}]}}',
                f'{{"records": {HOLE}}}',
                f'{{"records": [{HOLE}]}}',
                f'{{"records": [{{"id": "a"}}], "upload_id": {HOLE}}}',
            ),
            read_back="/v1/datasets/{id}/versions/{version}/records",
        ),
        Route(
            "POST",
            "/v1/evals",
            (f'{{"name": {HOLE}}}', f'{{"name": "n", "description": {HOLE}}}'),
            read_back="/v1/evals/{new}",
        ),
        Route(
            "POST",
            "/v1/evals/{id}/versions",
            (
                f'{{"metrics": [{{"name": "m", "scorer": "exact_match", "threshold": {HOLE}}}]}}',
                f'{{"metrics": [{{"name": "m", "scorer": "json_schema", "args": {{"schema": {HOLE}}}}}]}}',
                f'{{"metrics": [{{"name": "m", "scorer": "regex", "args": {{"pattern": {HOLE}}}}}]}}',
                f'{{"metrics": [{{"name": "m", "scorer": "contains", "args": {{"substrings": {HOLE}}}}}]}}',
                f'{{"metrics": [{{"name": {HOLE}, "scorer": "exact_match"}}]}}',
                f'{{"metrics": [{{"name": "m", "scorer": {HOLE}}}]}}',
                f'{{"metrics": [{{"name": "m", "scorer": "exact_match"}}], "threshold": {HOLE}}}',
                f'{{"metrics": [{{"name": "m", "scorer": "rubric"}}], "judge": {{"temperature": {HOLE}}}}}',
                f'{{"metrics": {HOLE}}}',
            ),
            read_back="/v1/eval-versions/{new}",
        ),
        Route(
            "POST",
            "/v1/datasets/{id}/runs",
            (
                f'{{"eval_version_id": {evv}, "batch_size": {HOLE}}}',
                f'{{"eval_version_id": {evv}, "threshold": {HOLE}}}',
                f'{{"eval_version_id": {evv}, "metric_args": {{"m": {{"case_sensitive": {HOLE}}}}}}}',
                f'{{"eval_version_id": {evv}, "metric_args": {HOLE}}}',
                f'{{"eval_version_id": {evv}, "name": {HOLE}}}',
                f'{{"eval_version_id": {evv}, "dataset_version": {HOLE}}}',
                f'{{"eval_version_id": {HOLE}}}',
            ),
            read_back="/v1/eval-runs/{new}",
        ),
        Route(
            "POST",
            "/v1/api-keys",
            (f'{{"name": {HOLE}}}', f'{{"role": {HOLE}}}', f'{{"expires_at": {HOLE}}}'),
        ),
        Route(
            "POST",
            "/v1/projects",
            (f'{{"name": {HOLE}}}', f'{{"name": "p", "description": {HOLE}}}'),
            read_back="/v1/projects/{new}",
        ),
        Route("POST", "/v1/datasets/{id}/uploads", (HOLE,)),
        Route("GET", "/v1/eval-runs", queries=("limit", "offset", "cursor", "status", "eval_id")),
        Route(
            "GET", "/v1/eval-runs/{id}/evaluations", queries=("metric", "status", "passed", "limit", "cursor")
        ),
        Route("GET", "/v1/datasets", queries=("limit", "cursor")),
        Route("GET", "/v2/eval-runs", queries=("limit", "offset", "eval_uuid", "workspace_uuid")),
        Route("GET", "/v1/eval-runs/{id}/export", queries=("format", "delivery")),
    ]


ROUTES = _routes()


# ------------------------------------------------------------------ the document's verdict
def _operation(template: str, method: str) -> dict[str, Any]:
    return DOCUMENT["paths"][template][method.lower()]


def conformance_problem(
    template: str, method: str, status: int, headers: dict[str, str], body: bytes
) -> str | None:
    """Why the answer is not one the document describes (None when it is)."""
    responses = _operation(template, method)["responses"]
    spec = responses.get(str(status))
    if spec is None:
        return f"status {status} is not documented for {method} {template}"
    content = spec.get("content") or {}
    ctype = headers.get("Content-Type", "").split(";")[0].strip()
    if ctype != "application/json" or "application/json" not in content:
        return None if not content or ctype in content else f"content type {ctype!r} undocumented"
    try:
        payload = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:80]!r}"
    schema = {**content["application/json"]["schema"], "components": DOCUMENT["components"]}
    try:
        jsonschema.Draft202012Validator(schema).validate(payload)
    except jsonschema.ValidationError as exc:
        return f"body violates the document: {exc.message[:200]} at {list(exc.absolute_path)}"
    if status >= 400 and not payload.get("error"):
        return "an error envelope without a message"
    return None


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def client(http_front) -> Client:
    return Client(wsgi_app(http_front))


def _call(
    client: Client, method: str, path: str, body: bytes | None = None, query: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    response = client.open(
        path,
        method=method,
        data=body,
        query_string=query,
        headers={"Authorization": f"Bearer {OWNER_KEY}", "Content-Type": "application/json"},
    )
    return response.status_code, dict(response.headers), response.get_data()


@pytest.fixture(scope="module")
def ids(client) -> Ids:
    def post(path: str, payload: dict) -> dict:
        status, _, body = _call(client, "POST", path, json.dumps(payload).encode())
        assert status in (201, 202), body
        return json.loads(body)

    dataset = post("/v1/datasets", {"name": "hostile"})
    post(
        f"/v1/datasets/{dataset['id']}/versions",
        {"records": [{"id": "r1", "output": "a", "golden_answer": "a"}]},
    )
    ev = post("/v1/evals", {"name": "hostile"})
    version = post(f"/v1/evals/{ev['id']}/versions", {"metrics": [{"name": "m", "scorer": "exact_match"}]})
    run = post(f"/v1/datasets/{dataset['id']}/runs", {"eval_version_id": version["id"]})
    return Ids(dataset["id"], ev["id"], version["id"], run["id"])


def _path(template: str, ids: Ids) -> str:
    owner = (
        ids.eval
        if template.startswith("/v1/evals/")
        else (ids.run if template.startswith("/v1/eval-runs/") else ids.dataset)
    )
    return template.replace("{id}", owner)


def _read_back(client: Client, route: Route, ids: Ids, created: dict[str, Any]) -> str | None:
    """What was accepted must be readable: its GET answers 200, as documented."""
    if route.read_back is None:
        return None
    path = route.read_back.replace("{new}", str(created.get("id")))
    path = path.replace("{id}", ids.dataset).replace("{version}", str(created.get("version")))
    template = route.read_back.replace("{new}", "{id}")
    status, headers, body = _call(client, "GET", path)
    if status != 200:
        return f"accepted ({created.get('id')}) but its GET {path} answers {status}: {body[:200]!r}"
    return conformance_problem(template, "GET", status, headers, body)


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_hostile_input_gets_a_documented_answer_never_a_5xx(client, ids, route):
    """GIVEN a route WHEN it gets hostile bodies or query values THEN each answer is one the
    document describes, no 5xx, and anything accepted reads back."""
    ran: list[str] = []

    @settings(
        max_examples=CASES_PER_ROUTE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        path, body, query = _path(route.template, ids), None, None
        if route.bodies:
            if data.draw(st.integers(0, 9), label="raw?") == 0:
                body = data.draw(RAW_BODIES, label="raw body")
            else:
                shape = data.draw(st.sampled_from(route.bodies), label="shape")
                text = shape.replace(HOLE, data.draw(HOSTILE, label="value"))
                body = text.replace('"EVV"', json.dumps(ids.eval_version)).encode("utf-8", "surrogatepass")
        else:
            name = data.draw(st.sampled_from(route.queries), label="parameter")
            value = data.draw(
                st.one_of(
                    _TEXT, _CONTROL, _EDGES, _NUMBERS, st.integers(1_000, 20_000).map(lambda n: "9" * n)
                ),
                label="value",
            )
            query = {name: value}
        status, headers, raw = _call(client, route.method, path, body, query)
        ran.append(str(status))
        assert status < 500, f"{status} for {body!r:.300} {query!r:.300}: {raw[:300]!r}"
        problem = conformance_problem(route.template, route.method, status, headers, raw)
        assert problem is None, f"{problem} for {body!r:.300} {query!r:.300}"
        if 200 <= status < 300 and route.method == "POST" and raw:
            problem = _read_back(client, route, ids, json.loads(raw))
            assert problem is None, f"{problem} for {body!r:.300}"

    case()
    # Hypothesis stops early only when it has exhausted the strategy: not the case here.
    assert len(ran) >= CASES_PER_ROUTE * 0.9, f"only {len(ran)} cases ran"
    print(f"\n{route.method} {route.template}: {len(ran)} hostile cases, statuses {sorted(set(ran))}")
