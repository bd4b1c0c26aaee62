"""Three costs of moto's per-request dispatch that change nothing, taken out.

moto (5.2.5) does on *every* request, whatever the service:

* ``call_action`` lists the handler class's methods (``method_names_from_class``:
  ``inspect.getmembers`` over the whole class, a few hundred attributes) only to ask
  whether the action's method is one of them;
* ``_enrich_response`` runs a regular expression over the whole response body to put the
  request id between ``<RequestId>`` tags — a body without that tag (every JSON answer:
  DynamoDB, Step Functions, Lambda) is scanned for nothing, a batch or a page of items
  included;
* the server looks for the request's service among moto's package folders
  (``list_of_moto_modules``: a listdir and a stat per folder, twice a request) — folders
  that do not change while the process runs, so they are listed once.

The replacements answer the same: the first asks the class for that one name (a function
attribute of the class is what ``getmembers(cls, isfunction)`` lists); the second runs the
same substitution only on a body holding the tag and keeps the rest (status as a string,
the request id header). No owner, no state: installing it twice is installing it once.
"""

from __future__ import annotations

import inspect
from typing import Any

from moto import backends as moto_backends
from moto.core import responses
from moto.core.responses import BaseResponse
from moto.utilities.aws_headers import gen_amzn_requestid_long

from assay_local.moto_hooks import Replacement

_original_enrich = BaseResponse._enrich_response
_original_method_names = responses.method_names_from_class


class FunctionNames:
    """``name in FunctionNames(cls)`` as ``name in method_names_from_class(cls)``, without
    listing every member of the class."""

    def __init__(self, clazz: object) -> None:
        self.clazz = clazz

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self.clazz, name, None))

    def __iter__(self) -> Any:
        return iter(_original_method_names(self.clazz))


def method_names_from_class(clazz: object) -> FunctionNames:
    return FunctionNames(clazz)


def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    if isinstance(body, str) and "<RequestId>" in body:
        return _original_enrich(headers, body)
    # What moto's does, but for the substitution that cannot match this body.
    if "status" in headers:
        headers["status"] = str(headers["status"])
    gen_amzn_requestid_long(headers)
    return headers, body


_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())


def _list_of_moto_modules() -> tuple[str, ...]:
    return _MOTO_MODULES


REPLACEMENTS = (
    Replacement(moto_backends, "list_of_moto_modules", _list_of_moto_modules),
    Replacement(responses, "method_names_from_class", method_names_from_class),
    Replacement(BaseResponse, "_enrich_response", staticmethod(_enrich_response)),
)
