"""The WSGI middleware in front of moto: requests signed by an assumed role go through the
``Enforcer``; a denial is answered in the service's own AccessDenied wire format. The
switch (``ASSAY_LOCAL_IAM``) that turns it off."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from assay_local.iam.enforcer import Denial, Enforcer, Principal
from assay_local.iam.policy import Check
from assay_local.moto_requests import WsgiApp, credential

ENV_SWITCH = "ASSAY_LOCAL_IAM"
_OFF_VALUES = {"off", "0", "false", "no", "disabled"}


def enabled_from_env(environ: Mapping[str, str]) -> bool:
    """On unless ``ASSAY_LOCAL_IAM`` says off (``off``, ``0``, ``false``, ``no``)."""
    return environ.get(ENV_SWITCH, "on").strip().lower() not in _OFF_VALUES


def _s3_error(denial: Denial, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = uuid.uuid4().hex[:16].upper()
    headers = [("x-amz-request-id", request_id), ("Content-Type", "application/xml")]
    if method == "HEAD":  # HEAD answers carry no body
        return "403 Forbidden", headers, b""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>{escape(denial.message)}</Message><RequestId>{request_id}</RequestId>"
        f"<HostId>{uuid.uuid4().hex}</HostId></Error>"
    )
    return "403 Forbidden", headers, body.encode()


def error_response(service: str, denial: Denial, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The AccessDenied answer in the service's wire format."""
    request_id = str(uuid.uuid4())
    if service == "s3":
        return _s3_error(denial, method)
    if service == "dynamodb":
        body = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": denial.message}
        return (
            "400 Bad Request",
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)],
            json.dumps(body).encode(),
        )
    if service in ("secretsmanager", "states"):
        key = "Message" if service == "secretsmanager" else "message"
        content_type = (
            "application/x-amz-json-1.1" if service == "secretsmanager" else ("application/x-amz-json-1.0")
        )
        body = {"__type": "AccessDeniedException", key: denial.message}
        return (
            "400 Bad Request",
            [("Content-Type", content_type), ("x-amzn-RequestId", request_id)],
            json.dumps(body).encode(),
        )
    if service == "sts":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(denial.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return "403 Forbidden", [("Content-Type", "text/xml")], xml.encode()
    # REST-JSON services (Bedrock Runtime, Lambda)
    body = {"Type": "User", "message": denial.message, "Message": denial.message}
    return (
        "403 Forbidden",
        [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "AccessDeniedException"),
            ("x-amzn-RequestId", request_id),
        ],
        json.dumps(body).encode(),
    )


class IamEnforcementApp:
    """WSGI middleware: refuse what the signing role may not do, pass everything else."""

    def __init__(self, app: WsgiApp, enforcer: Enforcer) -> None:
        self.app = app
        self.enforcer = enforcer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "ASIA" not in environ.get("HTTP_AUTHORIZATION", "") and (
            "ASIA" not in environ.get("QUERY_STRING", "")
        ):
            return self.app(environ, start_response)  # not signed by an assumed role
        outcome = self.enforcer.decide(environ)
        if outcome.denial is not None:
            self.enforcer.record(outcome.denial)
            return self._deny(outcome.service, outcome.denial, environ, start_response)
        if (
            outcome.principal is not None
            and outcome.service == "s3"
            and len(outcome.checks) == 1
            and outcome.checks[0].action in ("s3:GetObject", "s3:GetObjectVersion")
        ):
            return self._missing_key_needs_list_bucket(
                environ, start_response, outcome.principal, outcome.checks[0]
            )
        return self.app(environ, start_response)

    @staticmethod
    def _deny(
        service: str, denial: Denial, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status, headers, body = error_response(service, denial, environ["REQUEST_METHOD"])
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _missing_key_needs_list_bucket(
        self, environ: dict[str, Any], start_response: Callable[..., Any], principal: Principal, check: Check
    ) -> Iterable[bytes]:
        """S3 answers 404 for a missing key only to a caller that may list the bucket;
        anyone else gets 403 AccessDenied (on s3:ListBucket)."""
        answered: list[tuple[str, list[Any], Any]] = []
        written: list[bytes] = []

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            answered.append((status, headers, exc_info))
            return written.append

        result = self.app(environ, capture)
        try:
            chunks = written + list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = answered[0]
        if status.startswith("404"):
            bucket = check.resource.split(":::", 1)[1].split("/", 1)[0]
            scope = credential(environ)
            list_bucket = Check("s3:ListBucket", f"arn:aws:s3:::{bucket}")
            if not self.enforcer.allowed(principal, list_bucket, scope[1] if scope else self.enforcer.region):
                request = f"s3 {environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')} (no such key)"
                denial = self.enforcer.denial(principal, list_bucket, request, explicit=False)
                self.enforcer.record(denial)
                return self._deny("s3", denial, environ, start_response)
        if exc_info:
            start_response(status, headers, exc_info)
        else:
            start_response(status, headers)
        return chunks


def iam_middleware(enforcer: Enforcer) -> Callable[[WsgiApp], WsgiApp]:
    """For ``MiddlewareMotoServer``: wrap moto's app with ``enforcer``."""

    def wrap(app: WsgiApp) -> WsgiApp:
        return IamEnforcementApp(app, enforcer)

    return wrap
