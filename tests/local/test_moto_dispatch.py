"""moto's per-request dispatch without its two wasted costs (assay_local.moto_dispatch)
answers as moto's: the same actions found, the same enriched responses."""

from __future__ import annotations

import pytest
from assay_local import moto_dispatch, moto_hooks
from moto.awslambda.responses import LambdaResponse
from moto.core import responses
from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.iam.responses import IamResponse
from moto.moto_api._internal import mock_random
from moto.s3.responses import S3Response
from moto.stepfunctions.responses import StepFunctionResponse
from moto.sts.responses import TokenResponse

ORIGINAL_NAMES = moto_dispatch._original_method_names  # moto's, even once installed
ORIGINAL_ENRICH = moto_dispatch._original_enrich
CLASSES = [DynamoHandler, S3Response, LambdaResponse, StepFunctionResponse, IamResponse, TokenResponse]


@pytest.mark.parametrize("clazz", CLASSES, ids=lambda c: c.__name__)
def test_the_same_actions_are_found(clazz):
    listed = set(ORIGINAL_NAMES(clazz))
    ours = moto_dispatch.method_names_from_class(clazz)
    for name in sorted(set(dir(clazz)) | {"query", "get_item", "nope", "", "__init__", "dispatch"}):
        assert (name in ours) == (name in listed), name
    assert set(ours) == listed


BODIES = [
    '{"Items": [{"PK": {"S": "a"}}], "Count": 1}',
    "<Result><RequestId>old</RequestId><x>1</x></Result>",
    "<RequestId></RequestId>",
    b'{"binary": true}',
    b"<RequestId>bytes are left alone</RequestId>",
    "",
    None,
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("status", [None, 200, "400"])
def test_enriched_as_moto(body, status):
    def enrich(fn):
        headers = {} if status is None else {"status": status}
        mock_random.seed(7)
        return fn(dict(headers), body)

    assert enrich(moto_dispatch._enrich_response) == enrich(ORIGINAL_ENRICH)


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(responses, "method_names_from_class", ORIGINAL_NAMES)  # put back after
    monkeypatch.setattr(BaseResponse, "_enrich_response", staticmethod(ORIGINAL_ENRICH))
    moto_hooks.install(moto_dispatch)
    moto_hooks.install(moto_dispatch)
    assert moto_hooks.installed(moto_dispatch)
