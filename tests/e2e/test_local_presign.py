"""Presigned S3 URLs on the embedded local stack are checked as S3 checks them
(assay_local/presign.py): the export link ExportRunFunction signs downloads; the same link
re-pointed at another tenant's export, with its signature zeroed, replayed as a PUT, or
past its expiry is refused with S3's 403 and XML error; the dataset upload's presigned PUT
still works, and only with the Content-Type it was signed for."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.etree import ElementTree

import boto3
import pytest
import requests
from assay_local.stack import LocalStack
from botocore.config import Config

from tests.e2e.runs import Api

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-presign-owner-key-0123456789abc"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY) as local:
        yield local


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Api:
    return Api(stack, KEY)


@pytest.fixture(scope="module")
def export(stack: LocalStack, api: Api) -> dict[str, Any]:
    """A finished run, its export link (signed by ExportRunFunction's role), the export's
    bytes and S3 key, and another tenant's export next to it."""
    run = api.wait(api.schedule(*api.dataset_and_eval())["id"], {"completed", "failed"})
    assert run["status"] == "completed", run
    link = api.call("GET", f"/v1/eval-runs/{run['id']}/export", params={"delivery": "link"})
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    bucket = stack.resources["ArtifactsBucket"]
    path = urlsplit(url).path
    assert path.startswith(f"/{bucket}/tenants/{run['tenant_id']}/runs/{run['id']}/")
    key = path[len(bucket) + 2 :]
    s3 = stack.client("s3")
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    other_key = key.replace(run["tenant_id"], str(uuid.uuid4()))
    s3.put_object(Bucket=bucket, Key=other_key, Body=b'{"run": "another tenant\'s"}')
    return {
        "run": run,
        "url": url,
        "bucket": bucket,
        "key": key,
        "original": original,
        "other_key": other_key,
    }


def s3_error(response: requests.Response) -> tuple[int, str, str]:
    assert response.headers.get("Content-Type") == "application/xml", (response.status_code, response.text)
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own stack's answer
    return response.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def with_signature(url: str, signature: str) -> str:
    parts = urlsplit(url)
    query = "&".join(
        p if not p.startswith("X-Amz-Signature=") else f"X-Amz-Signature={signature}"
        for p in parts.query.split("&")
    )
    return urlunsplit(parts._replace(query=query))


def test_the_export_link_downloads(stack, export):
    verified = stack.presign.verified
    response = requests.get(export["url"], timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == export["original"]
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert stack.presign.verified == verified + 1
    # The link carries its signer: ExportRunFunction's role, through STS.
    params = dict(parse_qsl(urlsplit(export["url"]).query))
    assert params["X-Amz-Credential"].startswith("ASIA") and params["X-Amz-Security-Token"]


def test_the_link_re_pointed_at_another_tenants_export_is_refused(stack, export):
    # The other export is there (the harness reads it): the signature is what stops the link.
    stack.client("s3").head_object(Bucket=export["bucket"], Key=export["other_key"])
    response = requests.get(export["url"].replace(export["key"], export["other_key"]), timeout=30)
    status, code, _ = s3_error(response)
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert response.headers["Content-Type"] == "application/xml"


def test_the_link_with_its_signature_zeroed_is_refused(export):
    response = requests.get(with_signature(export["url"], "0" * 64), timeout=30)
    assert s3_error(response)[:2] == (403, "SignatureDoesNotMatch")


def test_the_download_link_cannot_overwrite_the_export(stack, export):
    response = requests.put(
        export["url"], data=b'{"items": []}', timeout=30, headers={"Content-Type": "application/json"}
    )
    assert s3_error(response)[:2] == (403, "SignatureDoesNotMatch")
    stored = stack.client("s3").get_object(Bucket=export["bucket"], Key=export["key"])["Body"].read()
    assert stored == export["original"]
    assert stack.iam_denials() == []  # refused as a bad signature, before IAM is asked


def test_an_expired_link_is_refused(stack, export):
    # A link signed through the stack's S3 with ExpiresIn=1 (SigV4, as the functions sign:
    # a default client presigns SigV2 for a custom endpoint), a second later.
    s3v4 = boto3.client(
        "s3",
        endpoint_url=stack.moto_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )
    short = s3v4.generate_presigned_url(
        "get_object", Params={"Bucket": export["bucket"], "Key": export["key"]}, ExpiresIn=1
    )
    assert "X-Amz-Expires=1&" in short
    assert requests.get(short, timeout=30).status_code == 200
    time.sleep(2.1)
    status, code, message = s3_error(requests.get(short, timeout=30))
    assert (status, code, message) == (403, "AccessDenied", "Request has expired")
    # The export link itself, 901 s later (the clock moved instead of waiting 15 minutes).
    real_clock = stack.presign.clock
    stack.presign.clock = lambda: real_clock() + 901
    try:
        response = requests.get(export["url"], timeout=30)
    finally:
        stack.presign.clock = real_clock
    assert s3_error(response) == (403, "AccessDenied", "Request has expired")
    assert requests.get(export["url"], timeout=30).status_code == 200


def test_the_dataset_upload_flow_still_works_and_only_as_signed(stack, api):
    dataset = api.call("POST", "/v1/datasets", json={"name": "uploaded"}).json()["id"]
    created = api.call("POST", f"/v1/datasets/{dataset}/uploads")
    assert created.status_code == 201, created.text
    upload = created.json()
    body = b"".join(
        json.dumps({"id": f"u{i}", "input": f"q{i}", "output": "a", "golden_answer": "a"}).encode() + b"\n"
        for i in range(25)
    )
    # Without the Content-Type it was signed for, S3 refuses the PUT.
    unsigned = requests.put(upload["url"], data=body, timeout=30, headers={"Content-Type": "text/plain"})
    assert s3_error(unsigned)[:2] == (403, "SignatureDoesNotMatch")
    # Re-pointed at the tenant's dataset versions, the upload link writes nothing there.
    bucket = stack.resources["ArtifactsBucket"]
    repointed = upload["url"].replace(f"/{bucket}/uploads/", f"/{bucket}/tenants/")
    assert s3_error(requests.put(repointed, data=body, headers=upload["headers"], timeout=30))[:2] == (
        403,
        "SignatureDoesNotMatch",
    )
    put = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text
    version = api.call("POST", f"/v1/datasets/{dataset}/versions", json={"upload_id": upload["upload_id"]})
    assert version.status_code == 201, version.text
    assert version.json()["record_count"] == 25


def test_refusals_are_recorded_and_legitimate_links_are_not_refused(stack):
    codes = [r.code for r in stack.presign.refusals()]
    assert set(codes) <= {"SignatureDoesNotMatch", "AccessDenied"}
    assert codes.count("AccessDenied") == 2
