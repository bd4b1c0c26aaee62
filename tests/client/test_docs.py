"""The CLI docs and the example workflow stay true to the parser."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from assay.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _subparsers(parser):
    """The parser's subcommands ({} for a leaf command such as ``ci``)."""
    action = next((a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"), None)
    return action.choices if action else {}


def test_example_workflow_uses_only_real_ci_options():
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    script = next(s["run"] for s in workflow["jobs"]["eval"]["steps"] if "assay ci" in s.get("run", ""))
    ci = _subparsers(build_parser())["ci"]
    known = {o for a in ci._actions for o in a.option_strings}
    used = set(re.findall(r"(--[a-z][a-z-]+)", script))
    assert used and used <= known, used - known


def test_cli_doc_names_every_command():
    doc = (ROOT / "docs" / "cli.md").read_text()
    for group, parser in _subparsers(build_parser()).items():
        if not _subparsers(parser):  # a leaf: ci, health
            assert f"`assay {group}" in doc, f"docs/cli.md lacks assay {group}"
            continue
        for command in _subparsers(parser):
            assert f"`assay {group} {command}" in doc, f"docs/cli.md lacks assay {group} {command}"
