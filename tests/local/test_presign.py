"""The local stack's presigned-URL check (assay_local/presign.py): URLs signed by botocore
itself, then tampered with one part at a time, must be refused as S3 refuses them; the
untampered ones accepted, also when a client percent-encodes differently. The clock is
injected, so expiry is tested without waiting."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import boto3
import pytest
from assay_local.presign import (
    MAX_EXPIRES,
    PresignVerificationApp,
    PresignVerifier,
    Refusal,
    moto_secrets,
)
from botocore.config import Config

ENDPOINT = "http://127.0.0.1:4566"
REGION = "us-east-1"
BUCKET = "artifacts"
KEY = "tenants/t-1/runs/r-1/export.json"
OTHER = "tenants/t-2/runs/r-9/export.json"
SECRETS = {"AKIDEXAMPLE": ("secret-one", None), "ASIATEMP": ("secret-two", "session-token")}


def s3(access_key: str = "AKIDEXAMPLE", region: str = REGION) -> Any:
    secret, token = SECRETS.get(access_key, ("not-a-known-secret", None))
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(signature_version="s3v4"),
    )


def presign_get(key: str = KEY, expires: int = 900, **kw: Any) -> str:
    return s3(**kw).generate_presigned_url(
        "get_object",
        ExpiresIn=expires,
        Params={
            "Bucket": BUCKET,
            "Key": key,
            "ResponseContentDisposition": 'attachment; filename="eval-run-r-1.json"',
            "ResponseContentType": "application/json",
        },
    )


def presign_put(key: str = "uploads/t-1/d-1/u-1.jsonl") -> str:
    return s3().generate_presigned_url(
        "put_object",
        ExpiresIn=900,
        HttpMethod="PUT",
        Params={"Bucket": BUCKET, "Key": key, "ContentType": "application/x-ndjson"},
    )


def signed_at(url: str) -> int:
    stamp = dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"]
    return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))


def environ(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The WSGI environ a server builds for ``url``: the path decoded (as latin-1), the
    query string raw, the Host header from the URL."""
    parts = urlsplit(url)
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "QUERY_STRING": parts.query,
        "PATH_INFO": unquote(parts.path).encode().decode("latin-1"),
        "HTTP_HOST": parts.netloc,
    }
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            env["CONTENT_TYPE"] = value
        else:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def verifier(clock: Callable[[], float] | None = None, url: str | None = None) -> PresignVerifier:
    """A verifier whose clock reads 10 s after ``url`` was signed (or ``clock``)."""
    now = clock or (lambda: signed_at(url) + 10.0 if url else time.time())
    return PresignVerifier(SECRETS.get, region=REGION, clock=now)


def with_query(url: str, change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]]) -> str:
    parts = urlsplit(url)
    pairs = change(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote, safe="-_.~")))


def code(refusal: Refusal | None) -> str | None:
    return None if refusal is None else refusal.code


# ------------------------------------------------------------------------- accepted
def test_an_untampered_get_link_is_accepted():
    url = presign_get()
    check = verifier(url=url)
    assert check.applies(environ(url))
    assert check.check(environ(url)) is None
    assert check.verified == 1 and check.refusals() == []


def test_an_untampered_put_link_is_accepted_with_the_signed_content_type():
    url = presign_put()
    assert verifier(url=url).check(environ(url, "PUT", {"Content-Type": "application/x-ndjson"})) is None


def test_a_temporary_key_with_its_session_token_is_accepted():
    url = presign_get(access_key="ASIATEMP")
    assert "X-Amz-Security-Token=session-token" in url
    assert verifier(url=url).check(environ(url)) is None


def test_an_equivalent_percent_encoding_is_accepted():
    """S3 decodes the path and the parameters and encodes them again before it compares:
    ``~`` as ``%7E``, ``/`` in the credential unencoded, parameters in another order."""
    url = presign_get(key="tenants/t-1/runs/r~1/export é.json")
    parts = urlsplit(url)
    reordered = "&".join(reversed(parts.query.split("&"))).replace("%2F", "/")
    respelled = urlunsplit(parts._replace(path=parts.path.replace("~", "%7E"), query=reordered))
    assert respelled != url
    assert verifier(url=url).check(environ(respelled)) is None


def test_a_link_at_its_last_second_is_accepted():
    url = presign_get(expires=60)
    assert verifier(lambda: signed_at(url) + 60.0).check(environ(url)) is None


# ------------------------------------------------------------------------- tampered
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda u: u.replace(KEY, OTHER), id="key re-pointed at another tenant"),
        pytest.param(lambda u: u.replace("/artifacts/", "/other-bucket/"), id="bucket changed"),
        pytest.param(
            lambda u: with_query(u, lambda q: [(k, "0" * 64 if k == "X-Amz-Signature" else v) for k, v in q]),
            id="signature zeroed",
        ),
        pytest.param(
            lambda u: with_query(u, lambda q: [(k, v.replace("attachment", "inline")) for k, v in q]),
            id="signed parameter changed",
        ),
        pytest.param(lambda u: with_query(u, lambda q: [*q, ("versionId", "v1")]), id="parameter added"),
        pytest.param(
            lambda u: with_query(u, lambda q: [(k, v) for k, v in q if k != "response-content-type"]),
            id="parameter removed",
        ),
        pytest.param(
            lambda u: with_query(u, lambda q: [(k, "3600" if k == "X-Amz-Expires" else v) for k, v in q]),
            id="expiry extended",
        ),
        pytest.param(lambda u: u.replace("127.0.0.1:4566", "localhost:4566"), id="host changed"),
    ],
)
def test_a_tampered_get_link_is_refused_as_signature_does_not_match(tamper):
    url = presign_get()
    refusal = verifier(url=url).check(environ(tamper(url)))
    assert refusal is not None and refusal.status == 403
    assert refusal.code == "SignatureDoesNotMatch"
    details = dict(refusal.details)
    assert details["AWSAccessKeyId"] == "AKIDEXAMPLE"
    assert details["CanonicalRequest"].startswith("GET\n/")


def test_a_get_link_cannot_be_used_to_put():
    url = presign_get()
    refusal = verifier(url=url).check(environ(url, "PUT", {"Content-Type": "application/json"}))
    assert code(refusal) == "SignatureDoesNotMatch"
    assert dict(refusal.details)["CanonicalRequest"].startswith("PUT\n")


def test_a_put_link_needs_its_signed_content_type():
    url = presign_put()
    check = verifier(url=url)
    assert code(check.check(environ(url, "PUT"))) == "SignatureDoesNotMatch"
    assert code(check.check(environ(url, "PUT", {"Content-Type": "text/plain"}))) == "SignatureDoesNotMatch"


def test_a_signature_from_another_secret_is_refused():
    url = s3().generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    lying = PresignVerifier(lambda key: ("another-secret", None), region=REGION, clock=lambda: signed_at(url))
    assert code(lying.check(environ(url))) == "SignatureDoesNotMatch"


# ------------------------------------------------------------------------- expired
def test_an_expired_link_is_refused_as_access_denied():
    url = presign_get(expires=60)
    refusal = verifier(lambda: signed_at(url) + 61.0).check(environ(url))
    assert refusal is not None and (refusal.status, refusal.code) == (403, "AccessDenied")
    assert refusal.message == "Request has expired"
    assert dict(refusal.details)["X-Amz-Expires"] == "60"
    xml = refusal.xml("REQ", "HOST").decode()
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in xml


# --------------------------------------------------------------- malformed, unknown key
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda q: [(k, v) for k, v in q if k != "X-Amz-Date"], "requires the X-Amz-Algorithm"),
        (lambda q: [(k, "AWS4-HMAC-SHA1" if k == "X-Amz-Algorithm" else v) for k, v in q], "only supports"),
        (
            lambda q: [(k, str(MAX_EXPIRES + 1) if k == "X-Amz-Expires" else v) for k, v in q],
            "less than a week",
        ),
        (lambda q: [(k, "-5" if k == "X-Amz-Expires" else v) for k, v in q], "non-negative"),
        (lambda q: [(k, "soon" if k == "X-Amz-Expires" else v) for k, v in q], "should be a number"),
        (lambda q: [(k, "yesterday" if k == "X-Amz-Date" else v) for k, v in q], "ISO8601"),
        (
            lambda q: [(k, v.replace("/s3/", "/sqs/") if k == "X-Amz-Credential" else v) for k, v in q],
            "incorrect service",
        ),
        (lambda q: [(k, "AKIDEXAMPLE/2026" if k == "X-Amz-Credential" else v) for k, v in q], "mal-formed"),
    ],
)
def test_malformed_parameters_are_refused_as_authorization_query_parameters_error(change, message):
    url = presign_get()
    refusal = verifier(url=url).check(environ(with_query(url, change)))
    assert refusal is not None and refusal.status == 400
    assert refusal.code == "AuthorizationQueryParametersError" and message in refusal.message


def test_a_link_of_a_week_and_a_second_is_refused():
    url = presign_get(expires=MAX_EXPIRES + 1)
    assert code(verifier(url=url).check(environ(url))) == "AuthorizationQueryParametersError"
    assert (
        verifier(url=presign_get(expires=MAX_EXPIRES)).check(environ(presign_get(expires=MAX_EXPIRES)))
        is None
    )


def test_a_credential_for_another_region_is_refused():
    url = presign_get(region="eu-west-1")
    refusal = verifier(url=url).check(environ(url))
    assert code(refusal) == "AuthorizationQueryParametersError"
    assert "the region 'eu-west-1' is wrong; expecting 'us-east-1'" in refusal.message


def test_an_unknown_access_key_is_refused():
    url = presign_get(access_key="AKIDUNKNOWN")
    refusal = verifier(url=url).check(environ(url))
    assert refusal is not None and (refusal.status, refusal.code) == (403, "InvalidAccessKeyId")


def test_a_temporary_key_needs_its_own_session_token():
    url = presign_get(access_key="ASIATEMP")
    check = verifier(url=url)
    wrong = with_query(url, lambda q: [(k, "other" if k == "X-Amz-Security-Token" else v) for k, v in q])
    missing = with_query(url, lambda q: [(k, v) for k, v in q if k != "X-Amz-Security-Token"])
    assert code(check.check(environ(wrong))) == "InvalidToken"
    assert code(check.check(environ(missing))) == "InvalidAccessKeyId"
    assert [r.code for r in check.refusals()] == ["InvalidToken", "InvalidAccessKeyId"]


# ------------------------------------------------------------------------ what it covers
def test_only_query_authenticated_s3_requests_are_checked():
    check = verifier()
    assert not check.applies({"QUERY_STRING": "list-type=2&prefix=tenants%2F"})
    assert not check.applies({"QUERY_STRING": "", "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 ..."})
    sts = (
        "Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
        "AKIDEXAMPLE%2F20261207%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=ab"
    )
    assert not check.applies({"QUERY_STRING": sts})
    assert check.applies({"QUERY_STRING": "X-Amz-Signature=ab"})  # half a presigned URL
    assert (
        code(
            check.check(
                {"QUERY_STRING": "X-Amz-Signature=ab", "REQUEST_METHOD": "GET", "PATH_INFO": "/artifacts/k"}
            )
        )
        == "AuthorizationQueryParametersError"
    )


def test_the_middleware_answers_s3s_xml_or_passes_the_request_on():
    url = presign_get()
    served: list[str] = []

    def moto(env: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        served.append(env["REQUEST_METHOD"])
        start_response("200 OK", [])
        return [b"object"]

    app = PresignVerificationApp(moto, verifier(url=url))
    answers: list[tuple[str, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answers.append((status, dict(headers)))

    assert b"".join(app(environ(url), start_response)) == b"object"
    body = b"".join(app(environ(url.replace(KEY, OTHER)), start_response))
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch')
    assert b"".join(app(environ(url.replace(KEY, OTHER), "HEAD"), start_response)) == b""
    assert [status for status, _ in answers] == ["200 OK", "403 Forbidden", "403 Forbidden"]
    assert answers[1][1]["Content-Type"] == "application/xml" and answers[1][1]["x-amz-request-id"]
    assert served == ["GET"]


def test_moto_secrets_finds_the_static_keys_and_nothing_else():
    lookup = moto_secrets("123456789012", {"testing": "testing"})
    assert lookup("testing") == ("testing", None)
    assert lookup("ASIANOTISSUED") is None
