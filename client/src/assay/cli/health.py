"""``assay health``: does the API answer and accept the key (``--wait``: until it does)."""

from __future__ import annotations

from assay.cli.context import Ctx
from assay.exit_codes import ExitCode


def cmd_health(ctx: Ctx) -> int:
    a = ctx.args
    client = ctx.client
    if a.wait:
        if not ctx.json:
            ctx.info(f"waiting for {client.base_url} (up to {a.timeout:g} s)")
        health = client.wait_until_ready(timeout=a.timeout, poll_interval=a.poll_interval)
    else:
        health = client.health()
        if client.api_key:
            client.check_key()
    key = "API key accepted" if client.api_key else "no API key set (ASSAY_API_KEY)"
    ctx.out(
        f"{client.base_url} is up (status {health.get('status')}, version {health.get('version')}); {key}",
        {**health, "url": client.base_url, "key_checked": bool(client.api_key)},
    )
    return ExitCode.OK
