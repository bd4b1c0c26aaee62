"""OpenAIEvalsFunction: OpenAI's Evals API (and the Files API it needs) at ``/openai/v1``,
answering in OpenAI's error envelope — so the official ``openai`` SDK works with
``base_url=<assay>/openai/v1`` (docs/openai-evals.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, File, Form, Query, UploadFile
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.domain.run_page import CONTENT_SECURITY_POLICY
from assay_service.handlers.api.app import (
    READ,
    WRITE,
    create_app,
    envelope,
    json_response,
    lambda_entry,
    no_body,
    principal,
)
from assay_service.models import openai as wire
from assay_service.services import openai_evals as service

PREFIX = "/openai/v1"
router = APIGatewayHttpRouter()
Order = Annotated[Literal["asc", "desc"], Query()]
Limit = Annotated[int, Query(ge=1, le=100)]


# ``after``: the id of the last object of the previous page (OpenAI's cursor).
_LAST = "The last id of the previous page."
AfterEval = Annotated[str | None, Query(pattern=r"^eval_[0-9a-f]{32}$", description=_LAST)]
AfterRun = Annotated[str | None, Query(pattern=r"^evalrun_[0-9a-f]{32}$", description=_LAST)]
AfterFile = Annotated[str | None, Query(pattern=r"^file-[0-9a-f]{32}$", description=_LAST)]
AfterItem = Annotated[str | None, Query(pattern=r"^outputitem_[0-9a-f]{52}$", description=_LAST)]


ROUTES: list[tuple[str, re.Pattern[str]]] = []  # (method, path pattern): the 405's Allow


def route(method: str, path: str, **options: Any) -> Any:
    """``router.route``, remembering the route for the 405 of a path's other methods."""
    ROUTES.append((method, re.compile("^" + re.sub(r"<\w+>", "[^/]+", path) + "$")))
    return router.route(path, method, **options)


def _base_url() -> str:
    event = router.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip() or "https"
    return f"{proto}://{event.request_context.domain_name}"


# ------------------------------------------------------------------ evals
@route("POST", f"{PREFIX}/evals", tags=["openai-evals"], summary="OpenAI: create an eval")
def create_eval(body: Annotated[wire.OpenAICreateEvalRequest, Body()]) -> Response[wire.OpenAIEval]:
    return json_response(200, service.create_eval(principal(router, WRITE), body))


@route("GET", f"{PREFIX}/evals", tags=["openai-evals"], summary="OpenAI: list evals")
def list_evals(
    after: AfterEval = None,
    limit: Limit = 20,
    order: Order = "asc",
    order_by: Annotated[Literal["created_at", "updated_at"], Query()] = "created_at",
) -> Response[wire.OpenAIEvalList]:
    return json_response(
        200,
        service.list_evals(principal(router, READ), after=after, limit=limit, order=order, order_by=order_by),
    )


@route("GET", f"{PREFIX}/evals/<eval_id>", tags=["openai-evals"], summary="OpenAI: get an eval")
def get_eval(eval_id: str) -> Response[wire.OpenAIEval]:
    return json_response(200, service.get_eval(principal(router, READ), eval_id))


@route(
    "POST",
    f"{PREFIX}/evals/<eval_id>",
    tags=["openai-evals"],
    summary="OpenAI: update an eval's name or metadata",
)
def update_eval(
    eval_id: str, body: Annotated[wire.OpenAIUpdateEvalRequest, Body()]
) -> Response[wire.OpenAIEval]:
    return json_response(200, service.update_eval(principal(router, WRITE), eval_id, body))


@route(
    "DELETE",
    f"{PREFIX}/evals/<eval_id>",
    tags=["openai-evals"],
    summary="OpenAI: delete an eval and its runs",
)
def delete_eval(eval_id: str) -> Response[wire.OpenAIEvalDeleted]:
    no_body(router)
    return json_response(200, service.delete_eval(principal(router, WRITE), eval_id))


# ------------------------------------------------------------------ runs
@route("POST", f"{PREFIX}/evals/<eval_id>/runs", tags=["openai-evals"], summary="OpenAI: create a run")
def create_run(
    eval_id: str, body: Annotated[wire.OpenAICreateRunRequest, Body()]
) -> Response[wire.OpenAIRun]:
    return json_response(
        200, service.create_run(principal(router, WRITE), eval_id, body, base_url=_base_url())
    )


@route("GET", f"{PREFIX}/evals/<eval_id>/runs", tags=["openai-evals"], summary="OpenAI: list an eval's runs")
def list_runs(
    eval_id: str,
    after: AfterRun = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Annotated[
        Literal["queued", "in_progress", "completed", "canceled", "failed"] | None, Query()
    ] = None,
) -> Response[wire.OpenAIRunList]:
    return json_response(
        200,
        service.list_runs(
            principal(router, READ),
            eval_id,
            after=after,
            limit=limit,
            order=order,
            status=status,
            base_url=_base_url(),
        ),
    )


@route("GET", f"{PREFIX}/evals/<eval_id>/runs/<run_id>", tags=["openai-evals"], summary="OpenAI: get a run")
def get_run(eval_id: str, run_id: str) -> Response[wire.OpenAIRun]:
    return json_response(200, service.get_run(principal(router, READ), eval_id, run_id, base_url=_base_url()))


# The SDK posts to …/cancel; OpenAI's API reference named the run itself: both cancel.
@route(
    "POST",
    f"{PREFIX}/evals/<eval_id>/runs/<run_id>/cancel",
    tags=["openai-evals"],
    summary="OpenAI: cancel a run",
)
@route(
    "POST", f"{PREFIX}/evals/<eval_id>/runs/<run_id>", tags=["openai-evals"], summary="OpenAI: cancel a run"
)
def cancel_run(eval_id: str, run_id: str) -> Response[wire.OpenAIRun]:
    no_body(router)
    return json_response(
        200, service.cancel_run(principal(router, WRITE), eval_id, run_id, base_url=_base_url())
    )


@route(
    "DELETE", f"{PREFIX}/evals/<eval_id>/runs/<run_id>", tags=["openai-evals"], summary="OpenAI: delete a run"
)
def delete_run(eval_id: str, run_id: str) -> Response[wire.OpenAIRunDeleted]:
    no_body(router)
    return json_response(200, service.delete_run(principal(router, WRITE), eval_id, run_id))


@route(
    "GET",
    f"{PREFIX}/evals/<eval_id>/runs/<run_id>/output_items",
    tags=["openai-evals"],
    summary="OpenAI: list a run's output items",
)
def list_output_items(
    eval_id: str,
    run_id: str,
    after: AfterItem = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Annotated[Literal["pass", "fail"] | None, Query()] = None,
) -> Response[wire.OpenAIOutputItemList]:
    return json_response(
        200,
        service.list_output_items(
            principal(router, READ), eval_id, run_id, after=after, limit=limit, order=order, status=status
        ),
    )


@route(
    "GET",
    f"{PREFIX}/evals/<eval_id>/runs/<run_id>/output_items/<item_id>",
    tags=["openai-evals"],
    summary="OpenAI: get an output item",
)
def get_output_item(eval_id: str, run_id: str, item_id: str) -> Response[wire.OpenAIOutputItem]:
    return json_response(200, service.get_output_item(principal(router, READ), eval_id, run_id, item_id))


# ------------------------------------------------------------------ history
@route(
    "POST",
    f"{PREFIX}/imports/evals",
    tags=["openai-evals"],
    summary="Assay: import an eval saved from the OpenAI API (its runs follow)",
)
def import_eval(
    body: Annotated[dict[str, Any], Body(description="The eval object as the OpenAI API returned it.")],
) -> Response[wire.OpenAIEval]:
    return json_response(200, service.import_eval(principal(router, WRITE), body))


@route(
    "POST",
    f"{PREFIX}/imports/evals/<eval_id>/runs",
    tags=["openai-evals"],
    summary="Assay: import a run saved from the OpenAI API, with its output items",
)
def import_run(
    eval_id: str, body: Annotated[wire.OpenAIImportRunRequest, Body()]
) -> Response[wire.OpenAIRun]:
    return json_response(
        200,
        service.import_run(
            principal(router, WRITE), eval_id, body.run, body.output_item_files, base_url=_base_url()
        ),
    )


# ------------------------------------------------------------------ the report page
@route(
    "GET",
    f"{PREFIX}/reports/<run_id>",
    tags=["openai-evals"],
    summary="The run's report page (the signed 15-minute link in a run's report_url; no API key)",
)
def report_page(
    run_id: str,
    # Plain strings: a link altered in any part is the same 403, whatever its shape.
    tenant: Annotated[str, Query(max_length=64)] = "",
    expires: Annotated[str, Query(max_length=20)] = "",
    signature: Annotated[str, Query(max_length=128)] = "",
) -> Response[str]:
    page = service.report_page(tenant, run_id, expires, signature, base_url=_base_url())
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ------------------------------------------------------------------ files
@route("POST", f"{PREFIX}/files", tags=["openai-evals"], summary="OpenAI: upload a file (purpose 'evals')")
def create_file(
    file: Annotated[UploadFile, File(description="The JSONL rows (`{item, sample}` a line); at most 5 MB.")],
    purpose: Annotated[Literal["evals", "user_data"], Form(description="What the file is for.")],
) -> Response[wire.OpenAIFile]:
    return json_response(
        200,
        service.create_file(
            principal(router, WRITE), filename=file.filename or "file", purpose=purpose, content=file.content
        ),
    )


@route("GET", f"{PREFIX}/files", tags=["openai-evals"], summary="OpenAI: list files")
def list_files(
    after: AfterFile = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Order = "desc",
    purpose: Annotated[str | None, Query(max_length=64)] = None,
) -> Response[wire.OpenAIFileList]:
    return json_response(
        200,
        service.list_files(principal(router, READ), after=after, limit=limit, order=order, purpose=purpose),
    )


@route("GET", f"{PREFIX}/files/<file_id>", tags=["openai-evals"], summary="OpenAI: get a file")
def get_file(file_id: str) -> Response[wire.OpenAIFile]:
    return json_response(200, service.get_file(principal(router, READ), file_id))


@route("GET", f"{PREFIX}/files/<file_id>/content", tags=["openai-evals"], summary="OpenAI: a file's content")
def file_content(file_id: str) -> Response[Any]:
    content = service.file_content(principal(router, READ), file_id)
    return Response(status_code=200, content_type="application/octet-stream", body=content)


@route("DELETE", f"{PREFIX}/files/<file_id>", tags=["openai-evals"], summary="OpenAI: delete a file")
def delete_file(file_id: str) -> Response[wire.OpenAIFileDeleted]:
    no_body(router)
    return json_response(200, service.delete_file(principal(router, WRITE), file_id))


# ------------------------------------------------------------------ errors
_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error"}


def openai_error_body(
    status: int, code: str, message: str, details: dict[str, Any], request_id: str
) -> dict[str, Any]:
    """OpenAI's envelope, ``{"error": {message, type, param, code}}``: the SDK raises its
    ``APIStatusError`` subclass for the status with this message."""
    param = details.get("param") or details.get("field")
    errors = details.get("errors")
    if param is None and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        param = str(errors[0].get("loc", "")).removeprefix("body.") or None
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if status == 401:
        code = "invalid_api_key"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


app = create_app(
    error_body=openai_error_body,
    multipart=frozenset({f"{PREFIX}/files"}),
    public_prefix=f"{PREFIX}/reports/",  # the link carries its own signature
)
app.include_router(router)


@app.not_found
def _no_route(exc: Exception) -> Response[Any]:
    """Under /openai/v1, as everywhere in the API: a known path with another method is a
    405 naming the path's methods, anything else a 404 — in OpenAI's envelope."""
    method, path = app.current_event.http_method, app.current_event.path
    allowed = sorted({m for m, pattern in ROUTES if pattern.match(path)})
    if allowed and method not in allowed:
        response = envelope(app, 405, "validation.invalid_request", f"{method} is not allowed here")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return envelope(app, 404, "resource.not_found", f"no such route: {method} {path[:200]}")


handler = lambda_entry(app)
