"""The local stack's LLM-judge settings: `serve`'s flags and variables reach the stack, the
stack turns them into the template's parameters (it cannot call Bedrock) and the value of
its judge secret (a key given now wins over a kept one), and the key is never printed."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from assay_local import __main__ as serve_cli
from assay_local import stack as stack_module
from assay_local.stack import (
    DEFAULT_TEMPLATE,
    LocalStack,
    LocalStackError,
    judge_parameters,
    judge_secret_value,
)
from assay_local.template import parameter_values, translate

URL = "http://127.0.0.1:11434/v1"


class Refused(Exception):
    pass


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The keyword arguments `serve` builds its LocalStack with (its start then refused), in
    a directory of its own (a stack already serving from the working directory refuses)."""
    monkeypatch.chdir(tmp_path)
    seen: dict[str, Any] = {}

    class Fake:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

        def start(self) -> None:
            raise Refused("not started in this test")

    monkeypatch.setattr(stack_module, "LocalStack", Fake)
    monkeypatch.delenv("ASSAY_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("ASSAY_JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("ASSAY_BOOTSTRAP_KEY", raising=False)
    return seen


def serve(*args: str) -> int:
    return serve_cli.main(["serve", "--port", "0", "--ephemeral", *args])


def test_serve_takes_the_judge_from_its_flags(started, capsys):
    assert serve("--judge-base-url", URL, "--judge-api-key", "sk-flag-secret") == 2
    assert started["judge_base_url"] == URL and started["judge_api_key"] == "sk-flag-secret"
    assert "sk-flag-secret" not in "".join(capsys.readouterr())


def test_serve_takes_the_judge_from_the_environment_and_a_flag_wins(started, monkeypatch, capsys):
    monkeypatch.setenv("ASSAY_JUDGE_BASE_URL", URL)
    monkeypatch.setenv("ASSAY_JUDGE_API_KEY", "sk-env-secret")
    serve()
    assert started["judge_base_url"] == URL and started["judge_api_key"] == "sk-env-secret"
    serve("--judge-base-url", "https://api.openai.com/v1")
    assert started["judge_base_url"] == "https://api.openai.com/v1"
    assert started["judge_api_key"] == "sk-env-secret"
    assert "sk-env-secret" not in "".join(capsys.readouterr())


def test_serve_without_a_judge_gives_the_stack_none(started):
    serve()
    assert started["judge_base_url"] is None and started["judge_api_key"] is None


def test_the_judge_line_names_the_endpoint_never_the_key():
    assert (
        serve_cli.judge_line(URL, "sk-secret")
        == f"LLM judges and generation: provider 'openai' at {URL} (API key given)."
    )
    assert "--judge-base-url URL" in serve_cli.judge_line(None, "sk-secret")
    assert "sk-secret" not in serve_cli.judge_line(None, "sk-secret")


def test_the_stack_offers_openai_only_with_a_base_url_and_the_template_accepts_both():
    assert judge_parameters(URL) == {"JudgeProviders": "openai", "JudgeOpenAIBaseUrl": URL}
    assert judge_parameters(None) == {"JudgeProviders": "none"}
    declared = translate(DEFAULT_TEMPLATE).parameters
    assert declared["JudgeProviders"]["Default"] == "bedrock,openai"  # AWS: both
    for given in (judge_parameters(URL), judge_parameters(None)):
        values = parameter_values(declared, given)
        assert {k: values[k] for k in given} == given


def test_a_base_url_that_is_not_http_is_refused_before_anything_starts():
    with pytest.raises(LocalStackError, match="must start with http:// or https://"):
        LocalStack(judge_base_url="127.0.0.1:11434/v1")


@pytest.mark.parametrize(
    ("kept", "base_url", "api_key", "value"),
    [
        ("generated", URL, "sk-new", "sk-new"),  # a key given wins over the kept value
        ("sk-old", None, "sk-new", "sk-new"),  # … also without a base URL (kept for later)
        ("sk-old", URL, None, None),  # no key given: the kept one stays
        ("sk-old", None, None, None),
        (None, URL, None, None),  # first start: generated as the template says
        # a kept JSON value would put its own base_url over the one given now: it goes
        (json.dumps({"base_url": "http://old/v1", "api_key": "sk-old"}), URL, None, '{"api_key": "sk-old"}'),
        (json.dumps({"base_url": "http://old/v1", "api_key": "sk-old"}), None, None, None),
        (json.dumps({"api_key": "sk-old"}), URL, None, None),
    ],
)
def test_the_judge_secret_value_at_a_start(kept, base_url, api_key, value):
    assert judge_secret_value(kept, base_url, api_key) == value


def test_serve_refuses_a_base_url_that_is_not_http_with_exit_2(started, capsys):
    assert serve("--judge-base-url", "127.0.0.1:11434/v1") == 2
    assert started == {}  # no stack was built
    assert "must start with http:// or https://" in capsys.readouterr().err


def test_a_second_stack_from_the_same_directory_is_refused_and_leaves_the_first_ones_file(
    started, capsys, tmp_path: Path
):
    """`bootstrap --local` and `invoke` find the stack by the directory's state file: a
    second stack must not take it over (nor remove it when it stops)."""
    with socket.socket() as first:  # the first stack's moto endpoint, answering
        first.bind(("127.0.0.1", 0))
        first.listen()
        endpoint = f"http://127.0.0.1:{first.getsockname()[1]}"
        state = {"url": "http://127.0.0.1:3917", "aws_env": {"AWS_ENDPOINT_URL": endpoint}, "functions": {}}
        (tmp_path / ".assay-local.json").write_text(json.dumps(state))
        assert serve() == 2
    assert "another local stack serves from this directory (http://127.0.0.1:3917" in capsys.readouterr().err
    assert started == {}  # nothing was built
    assert json.loads((tmp_path / ".assay-local.json").read_text()) == state
    # … and a file left by a stack killed without cleanup (nothing answers) does not block
    assert serve() == 2 and started["port"] == 0
