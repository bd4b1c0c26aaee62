"""The HTTP API's routing table, taken from the OpenAPI body samtranslator generates.

Routes are never hard-coded: every ``HttpApi`` event in the template becomes a path
and method in ``AWS::ApiGatewayV2::Api.Body`` with an ``x-amazon-apigateway-integration``
whose URI names the function, and that is what the local front routes on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay_local.template import TemplateError

_ANY_METHOD = "x-amazon-apigateway-any-method"
_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
# Keys that may sit beside the methods of an OpenAPI path item.
_PATH_ITEM_EXTRAS = frozenset({"parameters", "summary", "description", "servers"})
_INTEGRATION_URI = re.compile(r":lambda:path/[^/]+/functions/(?P<arn>.+)/invocations$")
_PARAM = re.compile(r"^\{(?P<name>[A-Za-z0-9_.-]+)(?P<greedy>\+?)\}$")


@dataclass(frozen=True)
class Route:
    """One route: ``method`` is upper-case or ``ANY``; ``path`` keeps the template's
    ``{param}`` syntax; ``function_arn`` is the integration's Lambda."""

    method: str
    path: str
    function_arn: str
    payload_format_version: str
    pattern: re.Pattern[str]
    literal_segments: int

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def _compile(path: str) -> tuple[re.Pattern[str], int]:
    parts: list[str] = []
    literals = 0
    segments = path.strip("/").split("/") if path.strip("/") else []
    for index, segment in enumerate(segments):
        param = _PARAM.match(segment)
        if param is None:
            if "{" in segment or "}" in segment:
                raise TemplateError(f"route {path!r}: partial-segment parameters are not supported")
            parts.append(re.escape(segment))
            literals += 1
        elif param["greedy"]:
            if index != len(segments) - 1:
                raise TemplateError(f"route {path!r}: a greedy parameter must come last")
            parts.append(f"(?P<{_group(param['name'])}>.+)")
        else:
            parts.append(f"(?P<{_group(param['name'])}>[^/]+)")
    return re.compile("^/" + "/".join(parts) + "$"), literals


def _group(name: str) -> str:
    """Regex group names must be identifiers; path parameters may contain - and ."""
    return "p_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in name)


def _param_names(path: str) -> dict[str, str]:
    names = {}
    for segment in path.strip("/").split("/"):
        param = _PARAM.match(segment)
        if param:
            names[_group(param["name"])] = param["name"]
    return names


class RouteTable:
    """Matches a method and path the way API Gateway HTTP APIs do: the most specific
    route wins. A greedy ``{name+}`` route only takes what no other route matches (so a
    catch-all ``ANY /{proxy+}`` never shadows a real route, whatever its method); then
    more literal segments first (a full match before a path variable), then an explicit
    method over ANY."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(
            routes,
            key=lambda r: ("+}" in r.path, -r.literal_segments, r.method == "ANY", r.path),
        )

    @classmethod
    def from_openapi(cls, body: Mapping[str, Any]) -> RouteTable:
        """Build the table from a *resolved* OpenAPI body (no intrinsics left)."""
        routes: list[Route] = []
        for path, item in (body.get("paths") or {}).items():
            pattern, literals = _compile(path)
            for key, operation in item.items():
                if key in _PATH_ITEM_EXTRAS:
                    continue
                if key == _ANY_METHOD:
                    method = "ANY"
                elif key.lower() in _HTTP_METHODS:
                    method = key.upper()
                else:
                    raise TemplateError(f"route {path!r}: unknown OpenAPI operation {key!r}")
                integration = operation.get("x-amazon-apigateway-integration")
                if not integration:
                    raise TemplateError(f"route {method} {path}: no Lambda integration")
                if integration.get("type") != "aws_proxy":
                    raise TemplateError(
                        f"route {method} {path}: integration type {integration.get('type')!r}"
                        " is not supported (only Lambda proxy)"
                    )
                version = str(integration.get("payloadFormatVersion", "2.0"))
                if version != "2.0":
                    raise TemplateError(f"route {method} {path}: payload format {version} is not supported")
                uri = integration.get("uri")
                found = _INTEGRATION_URI.search(uri) if isinstance(uri, str) else None
                if found is None:
                    raise TemplateError(f"route {method} {path}: not a Lambda integration: {uri!r}")
                routes.append(Route(method, path, found["arn"], version, pattern, literals))
        return cls(routes)

    def match(self, method: str, path: str) -> RouteMatch | None:
        method = method.upper()
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                names = _param_names(route.path)
                return RouteMatch(route, {names[g]: v for g, v in found.groupdict().items()})
        return None
