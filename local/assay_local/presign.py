"""Verify presigned S3 URLs in front of moto, as S3 does.

moto serves a presigned URL without checking its signature or its expiry, so locally a
download link re-pointed at another key, an expired link or a link with a made-up
signature all work, and a GET link can be replayed as a PUT. S3 refuses each of them.
``PresignVerifier`` checks every S3 request authenticated by query string (SigV4:
``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature``) and answers what S3 answers, in S3's XML:

* 400 ``AuthorizationQueryParametersError``: a parameter missing or malformed, a credential
  scope for another region or service, ``X-Amz-Expires`` negative or above 604800 (a week);
* 403 ``InvalidAccessKeyId``: a key this stack never issued (and an ``ASIA…`` key without
  its session token); 400 ``InvalidToken``: the wrong session token for the key;
* 403 ``AccessDenied`` "Request has expired": now is past ``X-Amz-Date`` + ``X-Amz-Expires``;
* 403 ``SignatureDoesNotMatch``: the signature recomputed from the request as it arrived
  (method, path, query parameters, the signed headers — ``host`` included) differs.

The signature is recomputed with botocore's own presigner, ``S3SigV4QueryAuth``: its
``canonical_request`` (S3's un-normalised path, sorted URI-encoded query parameters, the
signed headers, ``UNSIGNED-PAYLOAD``), ``string_to_sign`` and ``signature``, with the secret
of the access key that signed — moto's STS holds the functions' assumed-role keys, its IAM
the users' keys, and the harness signs with the static keys of ``LocalStack.aws_env()``.
The path is decoded and URI-encoded again (``/`` and ``~`` kept) and the query parameters
decoded, so a client's different but equivalent percent-encoding verifies, as on S3.

Not checked (differences from S3): requests signed in the ``Authorization`` header (the
SDK's own calls; ``iam`` checks who signed them), SigV2 presigned URLs, a
request dated in the future, ``x-amz-*`` headers sent but not signed, and a signed header
that botocore never signs (``user-agent``, ``expect``) — botocore leaves it out of the
canonical request, so such a URL from another SDK would be refused here.

Local tooling only; never part of the Lambda package.
"""

from __future__ import annotations

import calendar
import contextlib
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from assay_local.moto_requests import WsgiApp, credential

log = logging.getLogger("assay_local.presign")

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES = 604800  # seconds: S3's limit for a SigV4 presigned URL (a week)
AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"

# access key id -> (secret access key, session token or None), or None: unknown key
SecretLookup = Callable[[str], tuple[str, str | None] | None]


@dataclass(frozen=True)
class Refusal:
    """S3's answer to a presigned request it will not serve."""

    status: int
    code: str
    message: str
    details: tuple[tuple[str, str], ...] = ()  # further elements of S3's <Error>, in order
    request: str = ""  # "GET /bucket/key", for the record

    def xml(self, request_id: str, host_id: str) -> bytes:
        elements = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.details)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>"
            f"{elements}<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId>"
            "</Error>"
        ).encode()


def _parameters_error(message: str) -> Refusal:
    return Refusal(400, "AuthorizationQueryParametersError", message)


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a raw query string, percent-decoded (``+`` stays ``+``:
    the SDKs encode a space as ``%20``), in order, repeats kept."""
    pairs = []
    for part in query_string.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class PresignVerifier:
    """Checks presigned (query-string SigV4) S3 requests; ``clock`` gives the time (epoch
    seconds), injectable for tests."""

    def __init__(
        self, secret_for: SecretLookup, *, region: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret_for = secret_for
        self.region = region
        self.clock = clock  # epoch seconds now; tests may replace it
        self._lock = threading.Lock()
        self._refusals: list[Refusal] = []
        self._verified = 0

    # ------------------------------------------------------------------ records
    def refusals(self) -> list[Refusal]:
        """Presigned requests refused since start."""
        with self._lock:
            return list(self._refusals)

    @property
    def verified(self) -> int:
        """Presigned requests whose signature checked out."""
        with self._lock:
            return self._verified

    # ------------------------------------------------------------------ checks
    @staticmethod
    def applies(environ: Mapping[str, Any]) -> bool:
        """An S3 request authenticated by query string (any SigV4 query parameter present);
        a presigned URL of another service (its credential scope says which) is not."""
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-" not in query and "x-amz-" not in query:
            return False
        names = {name for name, _ in query_pairs(query)}
        if not names & {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"}:
            return False
        scope = credential(dict(environ))
        return scope is None or scope[2] == "s3"

    def check(self, environ: Mapping[str, Any]) -> Refusal | None:
        """None if S3 would accept the request's authentication, else S3's refusal."""
        refusal = self._check(environ)
        request = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
        with self._lock:
            if refusal is None:
                self._verified += 1
            else:
                refusal = Refusal(refusal.status, refusal.code, refusal.message, refusal.details, request)
                self._refusals.append(refusal)
        if refusal is not None:
            log.warning("S3 (local presign check) refused %s: %s %s", request, refusal.code, refusal.message)
        return refusal

    def _check(self, environ: Mapping[str, Any]) -> Refusal | None:  # noqa: C901
        pairs = query_pairs(environ.get("QUERY_STRING", ""))
        params: dict[str, str] = {}
        for name, value in pairs:
            params.setdefault(name, value)
        if any(not params.get(name) for name in AUTH_PARAMS):
            return _parameters_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                "X-Amz-Expires parameters."
            )
        if params["X-Amz-Algorithm"] != ALGORITHM:
            return _parameters_error(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
        scope = params["X-Amz-Credential"].split("/")
        if len(scope) != 5 or not all(scope):
            return _parameters_error(
                "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
            )
        access_key, day, region, service, terminal = scope
        if region != self.region:
            return _parameters_error(
                f"Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; "
                f"expecting '{self.region}'"
            )
        if service != "s3":
            return _parameters_error(
                f'Error parsing the X-Amz-Credential parameter; incorrect service "{service}". '
                'This endpoint belongs to "s3".'
            )
        if terminal != "aws4_request":
            return _parameters_error(
                f'Error parsing the X-Amz-Credential parameter; incorrect terminal "{terminal}". '
                'This endpoint uses "aws4_request".'
            )
        amz_date = params["X-Amz-Date"]
        try:
            signed_at = calendar.timegm(time.strptime(amz_date, _TIMESTAMP))
        except ValueError:
            return _parameters_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
        if day != amz_date[:8]:
            return _parameters_error(
                f'Invalid credential date "{day}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
            )
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return _parameters_error("X-Amz-Expires should be a number")
        if expires < 0:
            return _parameters_error("X-Amz-Expires must be non-negative")
        if expires > MAX_EXPIRES:
            return _parameters_error(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}"
            )

        keys = self._secret_for(access_key)
        token = params.get("X-Amz-Security-Token")
        if keys is None or (keys[1] is not None and token is None):
            return Refusal(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                (("AWSAccessKeyId", access_key),),
            )
        secret, session_token = keys
        if session_token is not None and token != session_token:
            return Refusal(
                400,
                "InvalidToken",
                "The provided token is malformed or otherwise invalid.",
                (("Token-0", token or ""),),
            )

        now = self.clock()
        if now > signed_at + expires:
            return Refusal(
                403,
                "AccessDenied",
                "Request has expired",
                (
                    ("X-Amz-Expires", str(expires)),
                    ("Expires", _iso(signed_at + expires)),
                    ("ServerTime", _iso(now)),
                ),
            )

        provided = params["X-Amz-Signature"]
        canonical, string_to_sign, expected = self.signature(
            environ,
            pairs,
            access_key,
            secret,
            token,
            region,
            amz_date,
            params["X-Amz-SignedHeaders"].split(";"),
        )
        if hmac.compare_digest(expected, provided):
            return None
        return Refusal(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you "
            "provided. Check your key and signing method.",
            (
                ("AWSAccessKeyId", access_key),
                ("StringToSign", string_to_sign),
                ("SignatureProvided", provided),
                ("StringToSignBytes", _hex_bytes(string_to_sign)),
                ("CanonicalRequest", canonical),
                ("CanonicalRequestBytes", _hex_bytes(canonical)),
            ),
        )

    @staticmethod
    def signature(
        environ: Mapping[str, Any],
        pairs: Iterable[tuple[str, str]],
        access_key: str,
        secret: str,
        token: str | None,
        region: str,
        amz_date: str,
        signed_headers: list[str],
    ) -> tuple[str, str, str]:
        """(canonical request, string to sign, signature) of the request as it arrived,
        computed by botocore's presigner."""
        path = environ.get("PATH_INFO", "") or "/"
        with contextlib.suppress(UnicodeDecodeError, UnicodeEncodeError):
            path = path.encode("latin-1").decode("utf-8")  # WSGI's decoded path is latin-1
        host = environ.get("HTTP_HOST", "")
        headers = HTTPHeaders()
        for name in signed_headers:
            value = _header(environ, name)
            if value is not None:
                headers[name] = value
        request = AWSRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            url=f"http://{host}{quote(path, safe='/~')}",
            headers=headers,
            params=[(k, v) for k, v in pairs if k != "X-Amz-Signature"],
        )
        request.context["timestamp"] = amz_date
        signer = S3SigV4QueryAuth(Credentials(access_key, secret, token), "s3", region)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        return canonical, string_to_sign, signer.signature(string_to_sign, request)


def _header(environ: Mapping[str, Any], name: str) -> str | None:
    lower = name.lower()
    if lower == "content-type":
        return environ.get("CONTENT_TYPE")
    if lower == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + lower.upper().replace("-", "_"))


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode())


# ======================================================================= moto's keys
def moto_secrets(account_id: str, static: Mapping[str, str]) -> SecretLookup:
    """The secret (and session token) of an access key this stack issued: a role assumed
    through moto's STS (the functions' keys), an IAM user's key, or one of ``static``
    (key id -> secret: the harness's own keys, which have no session token to check)."""

    def lookup(access_key_id: str) -> tuple[str, str | None] | None:
        if access_key_id in static:
            return static[access_key_id], None
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        assumed = sts_backends[account_id]["aws"].get_assumed_role_from_access_key(access_key_id)
        if assumed is not None:
            return assumed.secret_access_key, assumed.session_token
        for key in iam_backends[account_id]["aws"].get_all_access_keys_for_all_users():
            if key.access_key_id == access_key_id:
                return key.secret_access_key, None
        return None

    return lookup


# ========================================================================= the wire
class PresignVerificationApp:
    """WSGI middleware: refuse presigned S3 requests S3 would refuse, pass everything else."""

    def __init__(self, app: WsgiApp, verifier: PresignVerifier) -> None:
        self.app = app
        self.verifier = verifier

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.verifier.applies(environ):
            return self.app(environ, start_response)
        refusal = self.verifier.check(environ)
        if refusal is None:
            return self.app(environ, start_response)
        request_id = uuid.uuid4().hex[:16].upper()
        body = refusal.xml(request_id, uuid.uuid4().hex)
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""  # HEAD answers carry no body
        reason = {400: "Bad Request", 403: "Forbidden"}[refusal.status]
        start_response(
            f"{refusal.status} {reason}",
            [
                ("Content-Type", "application/xml"),
                ("Content-Length", str(len(body))),
                ("x-amz-request-id", request_id),
            ],
        )
        return [body]


def presign_middleware(verifier: PresignVerifier) -> Callable[[WsgiApp], WsgiApp]:
    """For ``MiddlewareMotoServer``: check presigned S3 requests with ``verifier``."""

    def wrap(app: WsgiApp) -> WsgiApp:
        return PresignVerificationApp(app, verifier)

    return wrap
