"""The model under test from the command line (docs/generation.md): ``--model``, ``--provider``,
``--prompt-file``, ``--system-file``, ``--temperature``, ``--max-tokens``, ``--seed`` and
``--no-cache``, shared by ``assay runs schedule``, ``assay runs sweep`` and ``assay ci``.

The flags build the run's ``generation`` override on top of the eval version's own block: the
API replaces the version's block with the run's, so ``--model other`` alone would otherwise
drop the eval's prompt. Files are read, and the flags checked, before any request."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.cli.context import CliError, Ctx, echo

# Flags that only mean something with a model to send them to.
_NEEDS_MODEL = (
    ("prompt_file", "--prompt-file"),
    ("system_file", "--system-file"),
    ("provider", "--provider"),
    ("temperature", "--temperature"),
    ("max_tokens", "--max-tokens"),
    ("seed", "--seed"),
)
NAME_MAX = 200  # the API's limit on a run's name


@dataclass
class Prompt:
    """A user-message template read from ``--prompt-file`` (``label``: the file's stem)."""

    path: Path
    text: str
    label: str


@dataclass
class GenerationArgs:
    """The generation flags, checked and with their files read."""

    models: list[str] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    system: str | None = None
    provider: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.models)


def read_template(path: Path, flag: str) -> str:
    """A template file's text (trailing whitespace dropped): a missing, unreadable, non-UTF-8
    or empty file is a one-line error, before anything is scheduled."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{flag} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise CliError(f"{flag} {path}: {exc.strerror or exc}") from None
    text = text.rstrip()
    if not text:
        raise CliError(f"{flag} {path}: the file is empty (it holds the template, e.g. {{{{record.input}}}})")
    return text


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def generation_args(args: argparse.Namespace) -> GenerationArgs:
    """The generation flags of a parsed command line, checked: a flag that shapes the model's
    calls without ``--model`` is a usage error; template files are read now."""
    models = list(dict.fromkeys(_listed(getattr(args, "model", None))))  # a repeated model once
    if not models:
        given = [flag for dest, flag in _NEEDS_MODEL if _listed(getattr(args, dest, None))]
        if given:
            raise CliError(
                f"{given[0]} needs --model: the model that answers the prompt "
                "(e.g. --model gpt-4o-mini --provider openai)"
            )
        return GenerationArgs()
    paths = list(dict.fromkeys(_listed(getattr(args, "prompt_file", None))))
    texts = [read_template(Path(p), "--prompt-file") for p in paths]
    stems = [Path(p).stem for p in paths]
    # Labels name the runs: the file's stem, or its path when two files share a stem.
    labels = stems if len(set(stems)) == len(stems) else [str(p) for p in paths]
    prompts = [Prompt(Path(p), t, lab) for p, t, lab in zip(paths, texts, labels, strict=True)]
    for prompt in prompts:
        if "{{" not in prompt.text:
            echo(
                f"warning: --prompt-file {prompt.path} has no {{{{record.…}}}} placeholder: "
                "every record is sent the same prompt",
                file=sys.stderr,
            )
    system_file = getattr(args, "system_file", None)
    system = read_template(Path(system_file), "--system-file") if system_file else None
    sampling = {
        key: getattr(args, key, None)
        for key in ("temperature", "max_tokens", "seed")
        if getattr(args, key, None) is not None
    }
    return GenerationArgs(models, prompts, system, getattr(args, "provider", None), sampling)


def version_generation(ctx: Ctx, eval_version_id: str) -> dict[str, Any]:
    """The eval version's own ``generation`` block (empty when it has none), unset fields left out."""
    block = ctx.client.get_eval_version(eval_version_id).generation or {}
    return {key: value for key, value in block.items() if value is not None}


def generation_block(
    base: dict[str, Any], gen: GenerationArgs, model: str, prompt: Prompt | None
) -> dict[str, Any]:
    """The run's ``generation``: the eval version's block with the flags over it. ``--prompt-file``
    replaces its messages with one user message; the provider is ``--provider``, else the
    version's, else ``bedrock`` (the API's default)."""
    block = dict(base)
    block["model"] = model
    block["provider"] = gen.provider or block.get("provider") or "bedrock"
    if prompt is not None:
        block["messages"] = [{"role": "user", "content": prompt.text}]
    if gen.system is not None:
        block["system"] = gen.system
    block.update(gen.sampling)
    return block


def run_generation(ctx: Ctx, gen: GenerationArgs, eval_version_id: str) -> dict[str, Any] | None:
    """``assay runs schedule`` / ``assay ci``: the run's ``generation`` override, or ``None``
    (no ``--model``: the eval version's own block, if any, is used)."""
    if not gen.active:
        return None
    base = version_generation(ctx, eval_version_id)
    return generation_block(base, gen, gen.models[0], gen.prompts[0] if gen.prompts else None)


def sweep_name(prefix: str, model: str, prompt: Prompt | None) -> str:
    """``sweep gpt-4o-mini terse``: which model and prompt file the run of a sweep tried."""
    name = " ".join(part for part in (prefix, model, prompt.label if prompt else "") if part)
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


# ---------------------------------------------------------------------------- parser
def _bounded(kind: type, low: float, high: float) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"{value!r} is not a {noun}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} (got {value})")
        return number

    return parse


def add_generation_options(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """The flags of the model under test; ``sweep``: --model and --prompt-file repeat."""
    g = p.add_argument_group(
        "model under test (docs/generation.md)",
        "  Each record's answer is generated by the model, then scored. The run's `generation`\n"
        "  starts from the eval version's (its prompt and sampling stay unless a flag below sets\n"
        "  them) and replaces it for this run.",
    )
    if sweep:
        g.add_argument(
            "--model",
            action="append",
            required=True,
            metavar="MODEL",
            help="a model to try, the provider's model id; repeat it: one run per model "
            "(times each --prompt-file)",
        )
        g.add_argument(
            "--prompt-file",
            action="append",
            type=Path,
            metavar="FILE",
            help="a user-message template to try (e.g. 'Answer briefly: {{record.input}}'); "
            "repeatable: one run per file and model (default: the eval version's prompt, "
            "else {{record.input}})",
        )
    else:
        g.add_argument(
            "--model",
            metavar="MODEL",
            help="the model under test, the provider's model id (e.g. gpt-4o-mini, "
            "amazon.nova-lite-v1:0): each record's answer is generated by it, then scored",
        )
        g.add_argument(
            "--prompt-file",
            type=Path,
            metavar="FILE",
            help="the user-message template (e.g. 'Answer briefly: {{record.input}}'), replacing "
            "the eval version's messages (needs --model; default: the version's, else "
            "{{record.input}})",
        )
    g.add_argument(
        "--provider",
        choices=["bedrock", "openai"],
        help="who serves --model: bedrock (Converse) or openai (any OpenAI-compatible endpoint: "
        "the deployment's judge endpoint, the only one on the local stack). Default: the eval "
        "version's generation provider, else bedrock — the API's default (docs/generation.md), "
        "so a model id means the same call from the CLI, eval.yaml and the API",
    )
    g.add_argument(
        "--system-file", type=Path, metavar="FILE", help="the system prompt template (needs --model)"
    )
    g.add_argument(
        "--temperature",
        type=_bounded(float, 0, 2),
        metavar="T",
        help="sampling temperature 0-2 (default: the version's, else 0)",
    )
    g.add_argument(
        "--max-tokens",
        type=_bounded(int, 1, 16384),
        metavar="N",
        help="longest answer in tokens (default: the version's, else 512)",
    )
    g.add_argument(
        "--seed",
        type=_bounded(int, 0, 2**31 - 1),
        metavar="N",
        help="sampling seed (OpenAI-compatible endpoints only; with it, or temperature 0, an "
        "identical call is answered from the response cache)",
    )
    g.add_argument(
        "--no-cache",
        dest="cache",
        action="store_const",
        const=False,
        default=None,
        help="call the models (generation and LLM judges) again instead of reusing the "
        "tenant's cached answers to identical calls (sends cache: false)",
    )
