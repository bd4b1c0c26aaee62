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


def _workflow_steps() -> list[dict]:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text())
    return workflow["jobs"]["eval"]["steps"]


def _assay_commands(script: str) -> list[tuple[list[str], set[str]]]:
    """Each ``assay …`` invocation in a step's script: its command words and the options it uses."""
    script = script.replace("\\\n", " ")
    # inside ${{ … }} a || is the expression language's, not a shell pipe
    script = re.sub(r"\$\{\{(.*?)\}\}", lambda m: m.group(0).replace("|", " "), script)
    found = []
    for segment in re.split(r"[|;\n]|\$\(", script):
        segment = segment.strip()
        if not segment.startswith("assay "):
            continue
        words = [w for w in segment.split()[1:] if re.fullmatch(r"[a-z]+", w)][:2]
        found.append((words, set(re.findall(r"(--[a-z][a-z-]+)", segment))))
    return found


def test_example_workflow_uses_only_real_cli_options():
    parser = build_parser()
    top = {o for a in parser._actions for o in a.option_strings}
    checked = set()
    for step in _workflow_steps():
        for words, used in _assay_commands(step.get("run", "")):
            command = _subparsers(parser)[words[0]]
            if _subparsers(command):
                command = _subparsers(command)[words[1]]
            known = top | {o for a in command._actions for o in a.option_strings}
            assert used <= known, f"assay {' '.join(words)}: {used - known}"
            checked.add(" ".join(words[: 2 if words[0] != "ci" else 1]))
    assert {"datasets upload", "ci"} <= checked, checked


def test_example_workflow_gates_on_the_version_its_upload_created_not_latest():
    steps = _workflow_steps()
    upload = next(s for s in steps if "datasets upload" in s.get("run", ""))
    gate = next(s for s in steps if "assay ci" in s.get("run", ""))
    assert "--json" in upload["run"] and '>> "$GITHUB_OUTPUT"' in upload["run"]
    [output] = re.findall(r"echo \"([a-z_]+)=", upload["run"])
    assert f'--dataset-version "${{{{ steps.{upload["id"]}.outputs.{output} }}}}"' in gate["run"]
    assert steps.index(upload) < steps.index(gate)


def test_example_workflow_skips_forks_and_says_why():
    text = (ROOT / "docs" / "ci" / "github-actions.yml").read_text()
    workflow = yaml.safe_load(text)
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert workflow["jobs"]["eval"]["if"] == same_repo
    assert "Pull requests from forks get no secrets" in text


def test_cli_doc_names_every_command():
    doc = (ROOT / "docs" / "cli.md").read_text()
    for group, parser in _subparsers(build_parser()).items():
        if not _subparsers(parser):  # a leaf: ci, health
            assert f"`assay {group}" in doc, f"docs/cli.md lacks assay {group}"
            continue
        for command in _subparsers(parser):
            assert f"`assay {group} {command}" in doc, f"docs/cli.md lacks assay {group} {command}"
