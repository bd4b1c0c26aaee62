"""``assay datasets …``: create (with a first version), upload a version, list, delete."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.cli.context import CliError, Ctx, data_warnings, deleted, list_named, resolve
from assay.errors import ApiError
from assay.exit_codes import ExitCode
from assay.models import Dataset


def cmd_datasets_create(ctx: Ctx) -> int:
    a = ctx.args
    if a.strict and a.file is None:
        raise CliError("--strict checks the records of --file: give --file too")
    if a.file is None:
        dataset = ctx.client.create_dataset(a.name, description=a.description, project_id=a.project)
        ctx.out(f"dataset {dataset.id}  {dataset.name}", {"dataset": dataset.to_dict()})
        return ExitCode.OK
    if not a.file.is_file():  # checked before anything is created
        raise CliError(f"{a.file}: no such file")
    # The file is parsed locally first; then one request creates the dataset with version 1
    # (a bad record creates nothing). A file too large to send inline goes through a presigned
    # upload, which needs the dataset first: the client deletes the dataset again if that fails.
    bar = ctx.progress(f"upload {a.file.name}", unit="B")
    try:
        with _strict_refusal():
            dataset, version = ctx.client.create_dataset_from_file(
                a.name,
                a.file,
                description=a.description,
                project_id=a.project,
                fmt=a.format,
                via=a.via,
                progress=(lambda d, t: bar.update(d, t)) if bar else None,
                strict=a.strict,
            )
    finally:
        if bar:
            bar.close()
    data_warnings(version.warnings)
    ctx.out(
        f"dataset {dataset.id}  {dataset.name}\n"
        f"version {version.version}  {version.record_count} records  ({version.id})",
        {"dataset": dataset.to_dict(), "version": version.to_dict()},
    )
    return ExitCode.OK


def cmd_datasets_delete(ctx: Ctx) -> int:
    dataset_id = resolve(ctx, "dataset", ctx.args.dataset)
    assert dataset_id is not None
    ctx.client.delete_dataset(dataset_id)
    return deleted(ctx, "dataset", dataset_id)


def cmd_datasets_upload(ctx: Ctx) -> int:
    a = ctx.args
    a.dataset = resolve(ctx, "dataset", a.dataset)  # an id, or a dataset's exact name
    version = _upload(ctx, a.dataset, a.file, a.format, a.via, strict=a.strict)
    data_warnings(version.warnings)
    ctx.out(
        f"dataset {a.dataset}  version {version.version}  {version.record_count} records  ({version.id})",
        version,
    )
    return ExitCode.OK


def cmd_datasets_list(ctx: Ctx) -> int:
    return list_named(ctx, "datasets", Dataset)


def _upload(ctx: Ctx, dataset_id: str, path: Path, fmt: str | None, via: str, *, strict: bool = False) -> Any:
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    bar = ctx.progress(f"upload {path.name}", unit="B")
    try:
        with _strict_refusal():
            return ctx.client.upload_file(
                dataset_id,
                path,
                fmt=fmt,
                via=via,
                progress=(lambda d, t: bar.update(d, t)) if bar else None,
                strict=strict,
            )
    finally:
        if bar:
            bar.close()


@contextlib.contextmanager
def _strict_refusal() -> Iterator[None]:
    """A ``--strict`` refusal names one problem in its message; print them all first."""
    try:
        yield
    except ApiError as exc:
        data_warnings((exc.details or {}).get("warnings"))
        raise
