"""``assay keys …``: create (the secret is printed once), list, revoke."""

from __future__ import annotations

from assay._format import table
from assay.cli.context import Ctx, listing
from assay.exit_codes import ExitCode


def cmd_keys_create(ctx: Ctx) -> int:
    a = ctx.args
    key = ctx.client.create_key(name=a.name, role=a.role, expires_at=a.expires_at)
    ctx.out(f"key {key.id}  role {key.role}  {key.name or ''}\nsecret (shown once): {key.key}", key)
    return ExitCode.OK


def cmd_keys_list(ctx: Ctx) -> int:
    keys = ctx.client.list_keys()
    ctx.out(
        table(
            ["id", "prefix", "role", "name", "revoked", "last used", "expires"],
            [
                [
                    k.id,
                    k.prefix,
                    k.role,
                    k.name or "",
                    "yes" if k.revoked else "",
                    k.last_used_at or "",
                    k.expires_at or "",
                ]
                for k in keys
            ],
        ),
        listing(keys),
    )
    return ExitCode.OK


def cmd_keys_revoke(ctx: Ctx) -> int:
    key = ctx.client.revoke_key(ctx.args.key_id)
    ctx.out(f"key {key.id} revoked", key)
    return ExitCode.OK
