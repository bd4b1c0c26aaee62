"""``assay evals …``: create a version from a YAML/JSON spec (its ``generation`` block, the model
under test, is sent as written), list, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay._format import describe_generation, num, table
from assay.cli.context import CliError, Ctx, deleted, list_named, resolve
from assay.exit_codes import ExitCode
from assay.models import Eval


def cmd_evals_create(ctx: Ctx) -> int:
    spec = _load_spec(ctx.args.file)
    ev, version, created = ctx.client.create_eval_from_spec(spec)
    rows = [[m.name, m.scorer, num(m.threshold, 2), json.dumps(m.args or {})] for m in version.metrics]
    model = f"model under test: {describe_generation(version.generation)}\n" if version.generation else ""
    ctx.out(
        f"eval {ev.id}  {ev.name}{' (new)' if created else ''}\n"
        f"eval version {version.id}  v{version.version}  run threshold {num(version.threshold, 2)}\n"
        + model
        + "\n"
        + table(["metric", "scorer", "threshold", "args"], rows),
        {"eval": ev.to_dict(), "version": version.to_dict(), "created_eval": created},
    )
    return ExitCode.OK


def cmd_evals_delete(ctx: Ctx) -> int:
    eval_id = resolve(ctx, "eval", ctx.args.eval)
    assert eval_id is not None
    ctx.client.delete_eval(eval_id)
    return deleted(ctx, "eval", eval_id)


def cmd_evals_list(ctx: Ctx) -> int:
    return list_named(ctx, "evals", Eval)


def _load_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            spec = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{path}: not valid JSON ({exc})") from None
    else:
        import yaml

        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CliError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise CliError(f"{path}: expected a mapping with name and metrics")
    return spec
