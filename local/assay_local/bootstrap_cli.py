"""``python -m assay_local bootstrap``: create a tenant and its first owner key.

Against a deployed stack it uses the caller's AWS credentials and finds the table and
the HMAC secret in the stack's outputs; against a running local stack it reads the
state file ``serve`` writes. Either way the work is ``assay_service.bootstrap`` — the
code the local stack runs for ``ASSAY_BOOTSTRAP_KEY``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = Path(".assay-local.json")
OUTPUT_ENV = {"TableName": "TABLE_NAME", "ApiKeySecretArn": "API_KEY_SECRET_ARN",
              "BucketName": "BUCKET_NAME"}


def stack_environment(stack_name: str, cloudformation: Any) -> dict[str, str]:
    """The variables bootstrap needs, from a deployed stack's outputs."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = sorted(set(OUTPUT_ENV) - set(outputs))
    if missing:
        raise SystemExit(f"stack {stack_name!r} has no output(s) {', '.join(missing)}: "
                         "is it an Assay stack?")
    return {env: outputs[out] for out, env in OUTPUT_ENV.items()}


def local_environment(state_file: Path = STATE_FILE) -> dict[str, str]:
    if not state_file.exists():
        raise SystemExit(f"{state_file} not found: start the local stack (make local) first")
    state = json.loads(state_file.read_text())
    return {**state["aws_env"], **{k: v for k, v in state["function_env"].items()
                                   if k in OUTPUT_ENV.values()}}


def bootstrap(environment: dict[str, str], *, tenant: str, key: str | None) -> dict[str, str]:
    """Point the service code at the stack and run the one bootstrap path."""
    os.environ.update(environment)
    from assay_service import dependencies
    from assay_service.bootstrap import bootstrap_tenant
    from assay_service.services.keys import generate_key

    dependencies.reset(clients=True)
    secret = key or generate_key()
    created = bootstrap_tenant(slug=tenant, owner_key=secret)
    return {"tenant": created.slug, "tenant_id": str(created.id), "owner_key": secret}


def run(args: Any) -> int:
    if args.local:
        environment = local_environment(Path(args.state_file))
    else:
        import boto3

        session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
        environment = stack_environment(args.stack_name, session.client("cloudformation"))
        environment.setdefault("AWS_DEFAULT_REGION", session.region_name or "us-east-1")
    result = bootstrap(environment, tenant=args.tenant, key=args.key)
    print(json.dumps(result, indent=2))
    if not args.key:
        print("Store owner_key now: it is not shown again (only its keyed hash is stored).")
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bootstrap", help="create a tenant and its first owner key",
        description="Create a tenant and its first owner key, against a deployed stack "
                    "(your AWS credentials; --stack-name) or the running local stack (--local). "
                    "Idempotent: an existing tenant keeps its id.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack-name", help="the deployed CloudFormation stack (e.g. assay)")
    target.add_argument("--local", action="store_true", help="the stack `make local` runs")
    parser.add_argument("--region", help="AWS region of the stack (default: your profile's)")
    parser.add_argument("--tenant", required=True, help="tenant slug: lowercase, digits, dashes")
    parser.add_argument("--key", help="use this owner key (20+ chars) instead of generating one")
    parser.add_argument("--state-file", default=str(STATE_FILE),
                        help="where `serve` wrote the local stack's endpoints")
