"""Prints the whole API's OpenAPI 3.1 document, generated from the route code of every
function: ``python -m assay_service.handlers.api.openapi`` (``make openapi`` writes it to
docs/openapi.json, ``make check`` compares). ApiMetaFunction builds and serves it
(``meta.openapi_document``): this module only imports it, so neither imports the other back."""

from __future__ import annotations

from assay_service.handlers.api.meta import openapi_document


def build_openapi_json() -> str:
    """The document as ``docs/openapi.json`` holds it."""
    return openapi_document()


if __name__ == "__main__":
    print(build_openapi_json(), end="")
