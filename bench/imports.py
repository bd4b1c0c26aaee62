"""Cold import time of each Lambda handler module, in a directory tree laid out like the
Lambda python3.12 runtime: a fresh interpreter per sample, bytecode as `make sam-build`
ships it (or none at all, as a bare `sam build` leaves it), median of 5 (what a cold start
pays before the handler runs).

Usage: make bench-imports                    # = .venv/bin/python bench/imports.py
       .venv/bin/python bench/imports.py [--samples 5] [--rebuild] [--only meta,list_runs]
       .venv/bin/python bench/imports.py --pyc none   # no bytecode outside the stdlib

What is measured and why it matches Lambda
------------------------------------------
* The handler modules are the ``Handler:`` strings of ``template.yaml`` (module part).
* The tree (built once under ``.tools/bench-runtime/``, ``--rebuild`` to redo it):
  ``task/``    = a copy of ``functions/`` without ``__pycache__`` (SAM copies CodeUri as is),
  ``layer/``   = ``layers/deps/requirements.txt`` installed with ``--no-compile`` (the
                 layer SAM builds holds no ``.pyc``: ``.aws-sam/build/DepsLayer`` has none),
  ``runtime/`` = boto3, botocore and their dependencies at the ``uv.lock`` versions, also
                 without ``.pyc`` (the runtime ships them; counting them uncompiled is the
                 pessimistic case).
  Search order as on Lambda: task root, then ``/opt/python`` (the layer), then
  ``$LAMBDA_RUNTIME_DIR`` (boto3) — on a bare CPython 3.12 venv (empty site-packages).
  With ``--pyc none`` only the standard library has bytecode, as ``/var/lang`` on Lambda.
* ``--pyc shipped`` (the default: what ``make sam-build`` deploys) has every ``.py`` of the
  three trees compiled with ``compileall --invalidation-mode unchecked-hash`` (hash-based ``.pyc`` stay valid
  whatever mtimes the zip extraction leaves; Lambda can read them from its read-only disk).
* Each sample is a new ``python -B`` process with ``PYTHONDONTWRITEBYTECODE=1`` (the Lambda
  file system is read-only, so nothing is ever cached between cold starts), and times
  ``importlib.import_module(handler_module)`` in-process with ``perf_counter``. Interpreter
  start-up (~15 ms) and the runtime's own bootstrap are not included.
* ``import ms`` is wall time, ``cpu ms`` the process CPU time over the same span: on a busy
  machine wall time swells with other processes, CPU time much less — compare runs on CPU
  when the load average (printed) is above the core count.
* ``+client`` is the first-use cost the import no longer pays: building the boto3/botocore
  clients a request needs (``dependencies.client``), measured in the same process right after
  the import — a cold start pays import + client, so both are printed.
* Lambda runs arm64 (Graviton) at 512 MB, i.e. about a third of a vCPU; this machine is
  faster per process, so absolute figures are lower than a real Init Duration. The target
  (≤ 300 ms for API handlers) is checked against these figures; compare before/after here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".tools" / "bench-runtime"  # .tools/ is git-ignored
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
PYTHON312 = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six", "urllib3")
TARGET_MS = 300
# Which clients the first request of each handler builds (dependencies.client services).
CLIENTS = {
    "export_run": ("dynamodb", "s3"),
    "datasets": ("dynamodb", "s3"),
    "schedule_run": ("dynamodb", "stepfunctions"),
    "cancel_run": ("dynamodb", "stepfunctions"),
    "prepare": ("dynamodb", "s3"),
    "score_batch": ("dynamodb", "s3"),
    "finalize": ("dynamodb", "s3"),
}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def handlers() -> dict[str, str]:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506
    return {
        name: res["Properties"]["Handler"].rsplit(".", 1)[0]
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def _run(*cmd: str | Path) -> str:
    out = subprocess.run(  # noqa: S603
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if out.returncode:
        sys.exit(f"{' '.join(map(str, cmd))}: {out.stderr.strip()}")
    return out.stdout


def _copy_task() -> None:
    shutil.rmtree(TREE / "task", ignore_errors=True)  # always the current code
    shutil.copytree(ROOT / "functions", TREE / "task", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def build_tree(rebuild: bool) -> Path:
    """The runtime-like tree (``task``, ``layer``, ``runtime``); returns its interpreter."""
    python = TREE / "venv" / "bin" / "python"
    if not rebuild and (TREE / ".complete").exists():
        _copy_task()
        return python
    if not PYTHON312:
        sys.exit("needs CPython 3.12 under ~/.pyenv/versions/3.12*")
    shutil.rmtree(TREE, ignore_errors=True)
    TREE.mkdir(parents=True)
    _run(PYTHON312[-1], "-m", "venv", "--without-pip", TREE / "venv")
    pins = [
        line
        for line in _run(
            UV,
            "export",
            "--frozen",
            "--only-group",
            "aws",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ).splitlines()
        if line.split("==")[0] in RUNTIME_PACKAGES
    ]
    (TREE / "runtime.txt").write_text("\n".join(pins) + "\n")
    for target, requirements in (
        ("layer", ROOT / "layers" / "deps" / "requirements.txt"),
        ("runtime", TREE / "runtime.txt"),
    ):
        _run(
            UV,
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--no-deps",
            "--python",
            python,
            "--target",
            TREE / target,
            "-r",
            requirements,
        )
    _copy_task()
    (TREE / ".complete").write_text("")
    return python


def prepare(python: Path, pyc: str) -> Path:
    """The directory whose task/layer/runtime the samples import from."""
    if pyc == "none":
        stray = [p for d in ("task", "layer", "runtime") for p in (TREE / d).rglob("*.pyc")]
        if stray:
            sys.exit(f"bytecode found in the tree: {stray[:3]}")
        return TREE
    shipped = TREE / "shipped"
    shutil.rmtree(shipped, ignore_errors=True)
    for part in ("task", "layer", "runtime"):
        shutil.copytree(TREE / part, shipped / part)
    _run(python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", shipped)
    return shipped


SAMPLE = """
import importlib, json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
module = importlib.import_module(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
from assay_service import dependencies
for service in sys.argv[2:]:
    dependencies.client(service)
t2 = time.perf_counter()
print(json.dumps({"import": (t1 - t0) * 1000, "cpu": (c1 - c0) * 1000,
                  "client": (t2 - t1) * 1000, "boto3": "boto3" in sys.modules,
                  "modules": len(sys.modules)}))
"""


def sample(python: Path, base: Path, module: str, clients: tuple[str, ...]) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join(str(base / p) for p in ("task", "layer", "runtime")),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "POWERTOOLS_SERVICE_NAME": "assay",
        "TABLE_NAME": "t",
        "BUCKET_NAME": "b",
        "LAMBDA_TASK_ROOT": str(base / "task"),
    }
    out = subprocess.run(  # noqa: S603
        [str(python), "-B", "-c", SAMPLE, module, *clients],
        capture_output=True,
        text=True,
        env=env,
        cwd=TREE,
        check=False,
    )
    if out.returncode:
        sys.exit(f"{module}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the runtime-like tree")
    parser.add_argument(
        "--pyc",
        choices=("none", "shipped"),
        default="shipped",
        help="shipped: all compiled, as make sam-build deploys (default); none: "
        "no bytecode outside the stdlib, as a bare sam build leaves it",
    )
    parser.add_argument("--only", default="", help="comma-separated module tails to measure")
    args = parser.parse_args()
    python = build_tree(args.rebuild)
    base = prepare(python, args.pyc)
    only = {s for s in args.only.split(",") if s}
    print(
        f"runtime-like tree {TREE.relative_to(ROOT)} · bytecode: {args.pyc} · median of "
        f"{args.samples} fresh processes · load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'function':<24} {'module':<30} {'import ms':>9} {'cpu ms':>7} {'+client':>8} "
        f"{'boto3':>6}  target {TARGET_MS} ms"
    )
    for name, module in sorted(handlers().items(), key=lambda kv: kv[1]):
        tail = module.rsplit(".", 1)[1]
        if only and tail not in only:
            continue
        clients = CLIENTS.get(tail, ("dynamodb",))
        runs = [sample(python, base, module, clients) for _ in range(args.samples)]
        imp, cpu, client = (statistics.median(r[k] for r in runs) for k in ("import", "cpu", "client"))
        verdict = ("ok" if imp <= TARGET_MS else "over") if ".handlers.api." in module else "-"
        print(
            f"{name:<24} {module.removeprefix('assay_service.handlers.'):<30} {imp:9.0f} "
            f"{cpu:7.0f} {client:8.0f} {'yes' if runs[0]['boto3'] else 'no':>6}  {verdict}"
        )


if __name__ == "__main__":
    main()
