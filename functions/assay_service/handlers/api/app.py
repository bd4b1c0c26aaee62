"""What every HTTP Lambda shares: the resolver, the error envelope, and authentication.

One place maps exceptions to HTTP (matched by base class), so route functions contain no
try/except and no status-code logic beyond their success status.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.router import Router

from assay_service.domain import coverage, jsondoc
from assay_service.errors import (
    AssayError,
    InsufficientPermissionsError,
    InvalidKeyError,
    InvalidRequestError,
)
from assay_service.models.domain import Principal
from assay_service.observability import get_logger

READ, WRITE, OWNER = "read", "write", "owner"
_ROLE_ALLOWS = {"viewer": {READ}, "member": {READ, WRITE}, "owner": {READ, WRITE, OWNER}}
MAX_REPORTED_ERRORS = 20


def _request_id(app: APIGatewayHttpResolver) -> str:
    try:
        return app.current_event.request_context.request_id or ""
    except Exception:
        return ""


ErrorBody = Callable[[int, str, str, dict[str, Any], str], dict[str, Any]]


def assay_error_body(
    status: int, code: str, message: str, details: dict[str, Any], request_id: str
) -> dict[str, Any]:
    """Assay's envelope (docs/api.md "Errors")."""
    return {"error": message, "code": code, "details": details, "request_id": request_id}


def envelope(
    app: APIGatewayHttpResolver, status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    error_body: ErrorBody = getattr(app, "error_body", assay_error_body)
    body = error_body(status, code, message, details or {}, _request_id(app))
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, default=str))


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


UNAVAILABLE = "the service is temporarily unavailable; retry"


def validation_problems(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    problems = []
    for err in errors[:MAX_REPORTED_ERRORS]:
        loc = _location(tuple(err.get("loc", ()))) + jsondoc.error_suffix(err)
        message = err.get("msg", "invalid") + coverage.unknown_field_hint(err)
        if err.get("type") == "json_invalid":
            loc, message = "body", "malformed JSON: " + str(err.get("ctx", {}).get("error", message))
        problems.append({"loc": loc, "msg": message})
    return problems


class Resolver(APIGatewayHttpResolver):
    """The HTTP API resolver of one function: whether its routes need an API key (but those
    under ``public_prefix``, which prove themselves), the error envelope it answers in, and
    the paths that take ``multipart/form-data`` bodies."""

    def __init__(
        self,
        *,
        authenticated: bool,
        error_body: ErrorBody = assay_error_body,
        multipart: frozenset[str] = frozenset(),
        public_prefix: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.authenticated = authenticated
        self.error_body = error_body
        self.multipart = multipart
        self.public_prefix = public_prefix

    def needs_key(self, path: str) -> bool:
        """Whether a request to ``path`` must carry an API key (a signed link does not)."""
        return self.authenticated and not (self.public_prefix and path.startswith(self.public_prefix))


def create_app(
    *,
    authenticated: bool = True,
    error_body: ErrorBody = assay_error_body,
    multipart: frozenset[str] = frozenset(),
    public_prefix: str | None = None,
) -> Resolver:
    # Bodies are decoded by jsondoc (one parser and one set of limits for bodies and uploaded
    # JSONL lines); what it refuses is a JSONDocumentError, a 400 through _known below.
    app = Resolver(
        authenticated=authenticated,
        error_body=error_body,
        multipart=multipart,
        public_prefix=public_prefix,
        enable_validation=True,
        response_validation_error_http_code=500,
        json_body_deserializer=jsondoc.decode,
    )

    @app.exception_handler(ResponseValidationError)
    def _bad_response(exc: ResponseValidationError) -> Response:
        # Our bug, not the caller's: never dressed up as a 4xx.
        get_logger().error("response failed validation", extra={"errors": exc.errors()[:5]})
        return envelope(app, 500, "server.internal_error", "internal error")

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        problems = validation_problems(list(exc.errors()))
        first = problems[0] if problems else {"loc": "request", "msg": "invalid"}
        code = "validation.invalid_format" if first["loc"] == "body" else "validation.invalid_request"
        return envelope(app, 400, code, f"{first['loc']}: {first['msg']}", {"errors": problems})

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_type(exc: RequestUnsupportedContentType) -> Response:
        return envelope(
            app, 415, "validation.invalid_format", "headers.content-type: send the body as application/json"
        )

    @app.exception_handler(AssayError)
    def _known(exc: AssayError) -> Response:
        if exc.status_code >= 500:
            get_logger().exception("request failed")
            return envelope(app, 503, "server.internal_error", UNAVAILABLE)
        return envelope(app, exc.status_code, exc.code, exc.message, exc.details)

    @app.not_found
    def _no_route(exc: RouteNotFound) -> Response:
        return envelope(app, 404, "resource.not_found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        get_logger().exception("unhandled error")
        return envelope(app, 500, "server.internal_error", "internal error")

    return app


def _api_key(event: dict[str, Any]) -> str | None:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    bearer = headers.get("authorization")
    if bearer and bearer[:7].lower() == "bearer ":
        return bearer[7:].strip()
    key = headers.get("x-api-key")
    return key.strip() if key is not None else None  # trimmed, as a Bearer value is


def _authenticate(app: Resolver, event: dict[str, Any]) -> dict[str, Any] | None:
    """Who calls, before anything else reads the request: an unauthenticated caller gets
    its 401 whatever the body or parameters (Powertools validates the request before any
    middleware runs, so this cannot be one). ``None`` when the key is good; the principal
    is then in ``app.context`` for the route."""
    from assay_service.services.keys import authenticate

    logger = get_logger()
    try:
        principal = authenticate(_api_key(event))
    except AssayError as exc:
        # Never the key, nor any part of it: only what failed and from where.
        source_ip = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
        if exc.status_code >= 500:  # the key store failed, not the caller
            logger.exception("authentication could not be checked")
            return _raw_envelope(event, 503, "server.internal_error", UNAVAILABLE, app.error_body)
        logger.info("authentication failed", extra={"code": exc.code, "source_ip": source_ip})
        return _raw_envelope(event, exc.status_code, exc.code, exc.message, app.error_body)
    logger.append_keys(tenant_id=str(principal.tenant_id), key_id=str(principal.key_id))
    logger.debug("authenticated", extra={"role": principal.role})
    app.append_context(principal=principal)
    return None


def principal(app: APIGatewayHttpResolver | Router, need: str = READ) -> Principal:
    """The caller, checked against the permission the route needs."""
    who = app.context.get("principal")
    if who is None:
        raise InvalidKeyError()
    if need not in _ROLE_ALLOWS[who.role]:
        raise InsufficientPermissionsError(f"the {who.role} role cannot do this")
    return who


def json_response(status: int, model: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response whose body the resolver validates against the route's declared model."""
    return Response(status_code=status, content_type="application/json", body=model, headers=headers)


def no_body(app: APIGatewayHttpResolver | Router) -> None:
    """For a route that takes no body: none, or an empty JSON object; anything else is a 400
    (a body sent by mistake must not be silently ignored)."""
    raw = app.current_event.decoded_body
    if not raw or not raw.strip():
        return
    try:
        empty = jsondoc.decode(raw) == {}
    except jsondoc.JSONDocumentError:
        empty = False
    if not empty:
        raise InvalidRequestError(
            "body: this route takes no body (send none, or {})",
            details={"errors": [{"loc": "body", "msg": "takes no body"}]},
        )


def _body_problem(event: dict[str, Any], *, multipart: bool = False) -> tuple[int, str] | None:
    """Bodies are UTF-8 JSON: no Content-Type or a JSON one — never form parsing; with
    ``multipart``, ``multipart/form-data`` too (left as it came, for the route to parse)."""
    body = event.get("body")
    if not body:
        return None
    ctype = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), "")
    base = ctype.split(";", 1)[0].strip().lower()
    if multipart and base == "multipart/form-data":
        if "boundary=" not in ctype.lower():
            return 400, "headers.content-type: multipart/form-data without its boundary"
        return None
    if not (base in ("", "application/json") or base.endswith("+json")):
        return 415, "headers.content-type: send the body as application/json"
    if event.get("isBase64Encoded"):
        try:
            event["body"] = base64.b64decode(body, validate=True).decode("utf-8")
            event["isBase64Encoded"] = False
        except (binascii.Error, UnicodeDecodeError):
            return 400, "body: not UTF-8 encoded JSON"
    return None


def _raw_envelope(
    event: dict[str, Any], status: int, code: str, message: str, error_body: ErrorBody = assay_error_body
) -> dict[str, Any]:
    body = error_body(status, code, message, {}, (event.get("requestContext") or {}).get("requestId", ""))
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def lambda_entry(app: Resolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    logger = get_logger()

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            if app.needs_key(event.get("rawPath") or "") and (refused := _authenticate(app, event)):
                return refused
            problem = _body_problem(event, multipart=event.get("rawPath") in app.multipart)
            if problem:
                return _raw_envelope(
                    event, problem[0], "validation.invalid_format", problem[1], app.error_body
                )
            return app.resolve(event, context)
        except Exception:
            logger.exception("request failed outside the resolver")
            return _raw_envelope(event, 500, "server.internal_error", "internal error", app.error_body)
        finally:
            app.clear_context()  # the principal never outlives its request in a warm worker

    return handler
