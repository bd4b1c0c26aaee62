"""How long does a 100,000-record JSONL version take to be accepted?

Runs on the embedded local stack (the real DatasetsFunction in its worker process, moto
as S3/DynamoDB): PUT the file to the presigned URL, then time POST .../versions.
Usage: .venv/bin/python bench/upload.py [--records N]
"""

from __future__ import annotations

import argparse
import json
import secrets
import time

import requests
from assay_local.stack import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    key = "ask_bench_" + secrets.token_urlsafe(24)
    body = b"".join(
        json.dumps(
            {
                "id": f"r{i}",
                "prompt": "Answer briefly.",
                "input": f"What is {i} + {i}?",
                "context": None,
                "output": f"The answer is {2 * i}.",
                "golden_answer": str(2 * i),
                "metadata": {"task": "math"},
            }
        ).encode()
        + b"\n"
        for i in range(args.records)
    )
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}) as stack:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        dataset = api.post(f"{stack.url}/v1/datasets", json={"name": "bench"}, timeout=30).json()
        api.post(
            f"{stack.url}/v1/datasets/{dataset['id']}/versions",  # warm the worker
            json={"records": [{"output": "warm"}]},
            timeout=30,
        ).raise_for_status()
        target = api.post(f"{stack.url}/v1/datasets/{dataset['id']}/uploads", timeout=30).json()
        t0 = time.perf_counter()
        put = requests.put(target["url"], data=body, headers=target["headers"], timeout=300)
        put.raise_for_status()
        put_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        response = api.post(
            f"{stack.url}/v1/datasets/{dataset['id']}/versions",
            json={"upload_id": target["upload_id"]},
            timeout=300,
        )
        create_s = time.perf_counter() - t0
        response.raise_for_status()
        version = response.json()
    print(f"records            {version['record_count']:,}")
    print(
        f"file size          {len(body) / 1e6:.1f} MB "
        f"(normalized version {version['size_bytes'] / 1e6:.1f} MB)"
    )
    print(f"PUT to S3          {put_s:.2f} s")
    print(f"create version     {create_s:.2f} s   (API Gateway limit: 30 s)")
    print(f"throughput         {version['record_count'] / create_s:,.0f} records/s")


if __name__ == "__main__":
    main()
