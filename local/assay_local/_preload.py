"""Imported by the Lambda workers' forkserver, and only there: warms it with the heavy
third-party libraries every worker would otherwise import on its own.

``lambda_runtime`` starts its warm workers from multiprocessing's ``forkserver``: one server
process, started with the stack, imports this module once; each worker is then a fork of
it, so a worker's cold start no longer pays ~1.3 s of CPU for Powertools' event handler,
pydantic, regex and botocore, and their pages stay shared between the workers (copy on
write) instead of being loaded ~40 MB per worker.

Importing this module has side effects (it empties ``os.environ`` down to the inherited
basics and freezes the garbage collector): never import it anywhere else. It imports
third-party code only — never ``assay_service``: a worker imports its handler itself, on its
first invocation, so code edited while the stack runs reaches the next worker.

The libraries are imported under the inherited basics only (``_worker.INHERITED_ENV``,
nothing of the stack process's or any function's environment). What they read from the
environment at import is listed in ``_worker.PRELOAD_IMPORT_ENV`` (tests/local keep that list
true); ``worker_main`` re-applies what depends on a function's own variables, and a function
whose variables would change the rest gets spawned workers instead (``lambda_runtime``).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys

from assay_local._worker import INHERITED_ENV, PRELOAD_MODULES


def _warm() -> None:
    basics = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    os.environ.clear()
    os.environ.update(basics)
    for name in PRELOAD_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a worker imports it itself, and reports the failure
            print(f"assay_local forkserver: could not preload {name}: {exc!r}", file=sys.stderr)
    # Everything imported so far lives as long as the workers: keep the collector of each
    # worker away from it (its reference counts would dirty, and so unshare, the pages).
    gc.collect()
    gc.freeze()


_warm()
