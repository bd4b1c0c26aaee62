"""Cold import time of each Lambda handler module: a fresh interpreter per sample, no
bytecode cache written, median of 5 (what a cold start pays before the handler runs).
Usage: .venv/bin/python bench/imports.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 5


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def handlers() -> dict[str, str]:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506
    return {name: res["Properties"]["Handler"].rsplit(".", 1)[0]
            for name, res in template["Resources"].items()
            if res["Type"] == "AWS::Serverless::Function"}


def cold_import_ms(module: str) -> float:
    code = ("import time; t = time.perf_counter(); import importlib; "
            f"importlib.import_module({module!r}); print((time.perf_counter() - t) * 1000)")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                         env=env, check=True, cwd=ROOT)
    return float(out.stdout.strip())


def main() -> None:
    print(f"{'function':<26} {'module':<48} {'median ms':>9}")
    for name, module in sorted(handlers().items()):
        samples = [cold_import_ms(module) for _ in range(SAMPLES)]
        print(f"{name:<26} {module:<48} {statistics.median(samples):9.0f}")


if __name__ == "__main__":
    main()
