"""S3 requests → IAM checks: object and bucket operations, their sub-resources, multipart
uploads, copies and DeleteObjects."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import unescape

from assay_local.iam.policy import Check
from assay_local.iam.target import Unmapped

_OBJECT_READ_SUBRESOURCES = {
    "acl": "GetObjectAcl",
    "tagging": "GetObjectTagging",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
    "torrent": "GetObjectTorrent",
    "attributes": "GetObjectAttributes",
    "uploadId": "ListMultipartUploadParts",
}
_OBJECT_WRITE_SUBRESOURCES = {
    "acl": "PutObjectAcl",
    "tagging": "PutObjectTagging",
    "retention": "PutObjectRetention",
    "legal-hold": "PutObjectLegalHold",
}
_BUCKET_SUBRESOURCES = {
    # sub-resource: (GET action, PUT action, DELETE action)
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "acl": ("GetBucketAcl", "PutBucketAcl", ""),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", ""),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": (
        "GetBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
    ),
    "ownershipControls": (
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "PutBucketOwnershipControls",
    ),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "notification": ("GetBucketNotification", "PutBucketNotification", ""),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "logging": ("GetBucketLogging", "PutBucketLogging", ""),
    "location": ("GetBucketLocation", "", ""),
    "versions": ("ListBucketVersions", "", ""),
    "uploads": ("ListBucketMultipartUploads", "", ""),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", ""),
}
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.(?:s3[.-]|localhost$)")


def s3_location(environ: Mapping[str, Any]) -> tuple[str, str]:
    """``(bucket, key)`` of a path-style or virtual-hosted request (either may be '')."""
    path = environ.get("PATH_INFO", "") or "/"
    with contextlib.suppress(UnicodeDecodeError, UnicodeEncodeError):
        path = path.encode("latin-1").decode("utf-8")  # WSGI's decoded path is latin-1
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
    virtual = _VIRTUAL_HOST.match(host)
    if virtual:
        return virtual.group("bucket"), path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _copy_source(header: str) -> str:
    source = unquote(header).lstrip("/").split("?", 1)[0]
    return f"arn:aws:s3:::{source}"


_DELETE_KEY = re.compile(rb"<(?:[\w.-]+:)?Key\s*>(.*?)</(?:[\w.-]+:)?Key\s*>", re.DOTALL)


def _deleted_keys(body: bytes) -> list[str]:
    """The keys a DeleteObjects body names. A pattern, not an XML parser: the body is
    the caller's, and nothing here should expand entities or build a tree from it."""
    return [unescape(m.decode("utf-8", "replace")) for m in _DELETE_KEY.findall(body)]


Query = Mapping[str, list[str]]


# ------------------------------------------------------------------------ objects
def _object_read(obj: str, query: Query, headers: Mapping[str, str]) -> list[Check]:
    """GET/HEAD of an object: GetObject (GetObjectVersion), or a sub-resource's action."""
    sub = next((a for s, a in _OBJECT_READ_SUBRESOURCES.items() if s in query), None)
    if sub:
        return [Check(f"s3:{sub}", obj)]
    return [Check("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", obj)]


def _object_put(obj: str, query: Query, headers: Mapping[str, str]) -> list[Check]:
    if "uploadId" not in query:
        sub = next((a for s, a in _OBJECT_WRITE_SUBRESOURCES.items() if s in query), None)
        if sub:
            return [Check(f"s3:{sub}", obj)]
    checks = [Check("s3:PutObject", obj)]  # PutObject, UploadPart, CopyObject
    if headers.get("x-amz-copy-source"):
        checks.append(Check("s3:GetObject", _copy_source(headers["x-amz-copy-source"])))
    return checks


def _object_post(obj: str, query: Query, headers: Mapping[str, str]) -> list[Check]:
    if "uploads" in query or "uploadId" in query:  # Create / Complete multipart
        return [Check("s3:PutObject", obj)]
    if "restore" in query:
        return [Check("s3:RestoreObject", obj)]
    if "select" in query:
        return [Check("s3:GetObject", obj)]
    raise Unmapped(f"s3 POST object ?{'&'.join(query)}")


def _object_delete(obj: str, query: Query, headers: Mapping[str, str]) -> list[Check]:
    if "uploadId" in query:
        return [Check("s3:AbortMultipartUpload", obj)]
    if "tagging" in query:
        return [Check("s3:DeleteObjectTagging", obj)]
    return [Check("s3:DeleteObjectVersion" if "versionId" in query else "s3:DeleteObject", obj)]


# method -> the object operation's mapping
_OBJECT_METHODS: dict[str, Callable[[str, Query, Mapping[str, str]], list[Check]]] = {
    "GET": _object_read,
    "HEAD": _object_read,
    "PUT": _object_put,
    "POST": _object_post,
    "DELETE": _object_delete,
}


def _object_checks(method: str, obj: str, query: Query, headers: Mapping[str, str]) -> list[Check]:
    mapping = _OBJECT_METHODS.get(method)
    if mapping is None:
        raise Unmapped(f"s3 {method} object")
    return mapping(obj, query, headers)


# ------------------------------------------------------------------------ buckets
def _delete_objects(bucket_arn: str, body: Callable[[], bytes]) -> list[Check]:
    """DeleteObjects: s3:DeleteObject on every key the body names."""
    keys = _deleted_keys(body())
    if not keys:  # nothing recognised: refuse rather than check nothing
        raise Unmapped("s3 DeleteObjects without a key the check can read")
    return [Check("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]


def _bucket_write(method: str, bucket_arn: str, sub_name: str | None) -> list[Check]:
    """PUT/DELETE of a bucket: Create/DeleteBucket, or a sub-resource's action."""
    if sub_name:
        action = _BUCKET_SUBRESOURCES[sub_name][1 if method == "PUT" else 2]
        if not action:
            raise Unmapped(f"s3 {method} bucket ?{sub_name}")
        return [Check(f"s3:{action}", bucket_arn)]
    return [Check("s3:CreateBucket" if method == "PUT" else "s3:DeleteBucket", bucket_arn)]


def _bucket_checks(method: str, bucket_arn: str, query: Query, body: Callable[[], bytes]) -> list[Check]:
    sub_name = next((s for s in _BUCKET_SUBRESOURCES if s in query), None)
    if method in ("GET", "HEAD"):
        if sub_name:
            return [Check(f"s3:{_BUCKET_SUBRESOURCES[sub_name][0]}", bucket_arn)]
        prefix = query.get("prefix", [""])[0]
        return [Check("s3:ListBucket", bucket_arn, {"s3:prefix": (prefix,)} if prefix else {})]
    if method == "POST" and "delete" in query:
        return _delete_objects(bucket_arn, body)
    if method in ("PUT", "DELETE"):
        return _bucket_write(method, bucket_arn, sub_name)
    raise Unmapped(f"s3 {method} bucket ?{'&'.join(query)}")


def s3_checks(
    method: str,
    bucket: str,
    key: str,
    query: Query,
    headers: Mapping[str, str],
    body: Callable[[], bytes],
) -> list[Check]:
    if not bucket:
        if method == "GET":
            return [Check("s3:ListAllMyBuckets", "*")]
        raise Unmapped(f"s3 {method} /")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if key:
        return _object_checks(method, f"{bucket_arn}/{key}", query, headers)
    return _bucket_checks(method, bucket_arn, query, body)
