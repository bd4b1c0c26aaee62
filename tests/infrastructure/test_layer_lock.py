"""The layer's requirements are exactly the runtime closure of uv.lock (no drift, no extras)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def runtime_closure() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    todo = [d["name"] for d in packages["assay-service"]["dependencies"]]
    pinned: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in pinned:
            continue
        package = packages[name]
        pinned[name] = package["version"]
        todo.extend(d["name"] for d in package.get("dependencies", []))
    return pinned


def test_layer_requirements_match_the_lock():
    lines = (ROOT / "layers" / "deps" / "requirements.txt").read_text().split()
    layer = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert layer == runtime_closure(), "run `make layer` after changing dependencies"


def test_boto3_is_left_to_the_lambda_runtime():
    assert "boto3" not in runtime_closure() and "botocore" not in runtime_closure()


def test_the_client_stays_out_of_the_layer():
    # The `assay` client/CLI (client/) is a workspace member for the dev/test groups only.
    closure = runtime_closure()
    assert "assay" not in closure and "pyyaml" not in closure
