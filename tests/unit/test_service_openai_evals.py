"""The OpenAI Evals API's mapping onto Assay (services/openai_evals.py), on the in-memory
fakes: criteria → metrics, rows → records, ids, and what is refused with which ``param``.
The wire itself (the official SDK, strict validation) is tests/e2e/test_openai_sdk.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from assay_service.errors import InvalidRequestError, NotFoundError
from assay_service.models.domain import Principal
from assay_service.models.openai import OpenAICreateEvalRequest, OpenAICreateRunRequest
from assay_service.services import openai_evals as service

from tests.support import fakes

ports_fixture = fakes.ports_fixture
CHECK = {
    "type": "string_check",
    "name": "Exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.a}}",
    "operation": "eq",
}
CONFIG = {"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True}


def owner() -> Principal:
    return Principal(tenant_id=uuid.uuid4(), key_id=uuid.uuid4(), role="owner")


def param_of(call: Any) -> str | None:
    with pytest.raises(InvalidRequestError) as refused:
        call()
    return refused.value.details.get("param")


def make_eval(
    ports: fakes.Ports, who: Principal, criteria: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return service.create_eval(
        who,
        OpenAICreateEvalRequest(name="e", data_source_config=CONFIG, testing_criteria=criteria or [CHECK]),
        ports=ports,
    )


def test_criteria_become_metrics_with_unique_names_and_openai_thresholds(ports: fakes.Ports) -> None:
    who = owner()
    criteria = [
        CHECK,
        {**CHECK, "name": "Exact!"},  # another name, the same slug
        {
            "type": "text_similarity",
            "name": "9 close!",
            "input": "{{sample.output_text}}",
            "reference": "{{item.a}}",
            "evaluation_metric": "rouge_l",
            "pass_threshold": 0.4,
        },
        {
            "type": "score_model",
            "name": "Q",
            "model": "gpt-4o-mini",
            "range": [0, 10],
            "pass_threshold": 6,
            "input": [{"role": "user", "content": "{{sample.output_text}}"}],
        },
    ]
    ev = make_eval(ports, who, criteria)
    version = (
        ports.evals.get_version(who.tenant_id, uuid.UUID(ev["assay"]["eval_version_id"]))
        if "assay" in ev
        else None
    )
    assert version is None  # the Assay side is not on the wire
    doc = ports.openai.get(who.tenant_id, service.EVAL, service.eval_uuid(ev["id"]))
    assert doc is not None
    stored = ports.evals.get_version(who.tenant_id, uuid.UUID(doc["assay"]["eval_version_id"]))
    assert stored is not None
    assert [(m.name, m.scorer, m.threshold) for m in stored.metrics] == [
        ("Exact", "string_check", 1),
        ("Exact_2", "string_check", 1),
        ("g_9_close", "text_similarity", 0.4),
        ("Q", "score_model", 0.6),  # pass_threshold 6 on [0, 10]
    ]
    assert (
        stored.judge is not None and stored.judge.provider == "openai" and stored.judge.model == "gpt-4o-mini"
    )
    assert ev["testing_criteria"] == criteria and ev["data_source_config"]["schema"]["required"] == [
        "item",
        "sample",
    ]


@pytest.mark.parametrize(
    ("criterion", "param"),
    [
        ({"type": "python", "name": "p", "source": "x"}, "testing_criteria[0].type"),
        ({"type": "multi", "name": "m"}, "testing_criteria[0].type"),
        ({"type": "regex", "name": "r"}, "testing_criteria[0].type"),
        ({**CHECK, "name": " "}, "testing_criteria[0].name"),
        ({**CHECK, "pass_threshold": 0.5}, "testing_criteria[0].pass_threshold"),
        ({**CHECK, "extra": 1}, "testing_criteria[0].extra"),
        ({**CHECK, "input": "{{ item.a | upper }}"}, "testing_criteria[0].input"),
        ({**CHECK, "reference": "{{item.a"}, "testing_criteria[0].reference"),
        ({**CHECK, "operation": "regex"}, "testing_criteria[0].operation"),
        ({**CHECK, "name": "n" * 201}, "testing_criteria[0].name"),
        (
            {
                "type": "text_similarity",
                "name": "c",
                "input": "a",
                "reference": "b",
                "evaluation_metric": "bleu",
            },
            "testing_criteria[0].pass_threshold",
        ),
    ],
)
def test_a_criterion_assay_cannot_serve_is_a_400_naming_it(
    ports: fakes.Ports, criterion: dict, param: str
) -> None:
    assert param_of(lambda: make_eval(ports, owner(), [criterion])) == param
    assert ports.openai.docs == {}  # nothing stored


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ({"type": "logs"}, "data_source_config.type"),
        ({"type": "stored_completions"}, "data_source_config.type"),
        ({"type": "custom"}, "data_source_config.item_schema"),
        ({"type": "custom", "item_schema": {}, "schema": {}}, "data_source_config.schema"),
    ],
)
def test_data_source_configs_other_than_custom_are_400s(ports: fakes.Ports, config: dict, param: str) -> None:
    req = OpenAICreateEvalRequest(data_source_config=config, testing_criteria=[CHECK])
    assert param_of(lambda: service.create_eval(owner(), req, ports=ports)) == param


@pytest.mark.parametrize(
    ("source", "param"),
    [
        ({"type": "file_content", "content": []}, "data_source.source.content"),
        ({"type": "file_content", "content": ["x"]}, "data_source.source.content"),
        ({"type": "file_content", "content": [{"item": 3}]}, "data_source.source.content"),
        (
            {"type": "file_content", "content": [{"sample": {"output_text": "4"}}]},
            "data_source.source.content",
        ),
        (
            {"type": "file_content", "content": [{"item": {"a": "4"}, "sample": {"output_text": 4}}]},
            "data_source.source.content",
        ),
        (
            {"type": "file_content", "content": [{"item": {"a": "4"}, "extra": 1}]},
            "data_source.source.content",
        ),
        ({"type": "file_id", "id": "file-00000000000000000000000000000000"}, "data_source.source.id"),
        ({"type": "stored_completions"}, "data_source.source.type"),
        ({"type": "url"}, "data_source.source.type"),
    ],
)
def test_bad_rows_are_400s_naming_where(ports: fakes.Ports, source: dict, param: str) -> None:
    who = owner()
    ev = make_eval(ports, who)
    req = OpenAICreateRunRequest(data_source={"type": "jsonl", "source": source})
    assert param_of(lambda: service.create_run(who, ev["id"], req, base_url="http://x", ports=ports)) == param


def test_completions_map_onto_generation_and_images_are_refused(ports: fakes.Ports) -> None:
    ds = {
        "type": "completions",
        "model": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "input_messages": {
            "type": "template",
            "template": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Q: "},
                        {"type": "input_text", "text": "{{item.q}}"},
                    ],
                },
            ],
        },
        "sampling_params": {
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 3,
            "max_completion_tokens": 64,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "object"}},
            },
        },
    }
    generation = service._generation(ds)
    assert (
        generation.provider == "bedrock"
    )  # a Bedrock model id; any other name: the OpenAI-compatible endpoint
    assert (
        generation.system == "Be brief." and generation.messages[0].content == "Q: \n{{item.q}}"
    )  # parts joined by newlines, as the graders join them
    assert (generation.temperature, generation.top_p, generation.seed, generation.max_tokens) == (
        0.2,
        0.9,
        3,
        64,
    )
    assert generation.response_format == {"type": "object"}
    image = {
        **ds,
        "input_messages": {
            "type": "template",
            "template": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}],
        },
    }
    assert param_of(lambda: service._generation(image)) == "data_source.input_messages.template[0].content"
    reference = {**ds, "input_messages": {"type": "item_reference", "item_reference": "item.messages"}}
    assert param_of(lambda: service._generation(reference)) == "data_source.input_messages"


@pytest.mark.parametrize(
    "model", ["anthropic.claude-3-haiku", "us.amazon.nova-lite-v1:0", "global.anthropic.x"]
)
def test_bedrock_model_ids_go_to_bedrock(model: str) -> None:
    assert service.provider_for(model) == "bedrock"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "o3", "llama3.1:8b", "HuggingFaceTB/SmolLM2-135M"])
def test_other_model_names_go_to_the_openai_compatible_endpoint(model: str) -> None:
    assert service.provider_for(model) == "openai"


@pytest.mark.parametrize("text", ["", "eval", "eval_", "eval_xyz", "evalrun_" + "0" * 32, "eval_" + "0" * 31])
def test_a_malformed_or_foreign_id_is_a_404_not_a_500(ports: fakes.Ports, text: str) -> None:
    with pytest.raises(NotFoundError):
        service.get_eval(owner(), text, ports=ports)


def test_another_tenants_eval_is_not_found(ports: fakes.Ports) -> None:
    ev = make_eval(ports, owner())
    with pytest.raises(NotFoundError):
        service.get_eval(owner(), ev["id"], ports=ports)


def test_a_forged_output_item_id_is_a_404(ports: fakes.Ports) -> None:
    run_id = uuid.uuid4()
    good = service._item_id(run_id, 5, 1234)
    assert service._item_position(run_id, good) == (5, 1234)
    for forged in (
        good[:-1],
        good + "0",
        good.replace("outputitem_", "outputitem-"),
        service._item_id(uuid.uuid4(), 5, 1234),
    ):
        with pytest.raises(NotFoundError):
            service._item_position(run_id, forged)


def test_an_eval_updates_its_name_and_metadata_and_lists_in_order(ports: fakes.Ports) -> None:
    who = owner()
    made = [make_eval(ports, who) for _ in range(3)]
    from assay_service.models.openai import OpenAIUpdateEvalRequest

    updated = service.update_eval(
        who, made[1]["id"], OpenAIUpdateEvalRequest(name="n", metadata={"k": "v"}), ports=ports
    )
    assert (updated["name"], updated["metadata"]) == ("n", {"k": "v"})
    every = service.list_evals(who, after=None, limit=10, order="asc", order_by="created_at", ports=ports)
    ordered = [e["id"] for e in every["data"]]
    assert sorted(ordered) == sorted(m["id"] for m in made) and every["has_more"] is False
    page = service.list_evals(who, after=None, limit=2, order="asc", order_by="created_at", ports=ports)
    assert [e["id"] for e in page["data"]] == ordered[:2] and page["has_more"] is True
    rest = service.list_evals(
        who, after=page["last_id"], limit=2, order="asc", order_by="created_at", ports=ports
    )
    assert [e["id"] for e in rest["data"]] == ordered[2:] and rest["has_more"] is False
    newest = service.list_evals(who, after=None, limit=3, order="desc", order_by="created_at", ports=ports)
    assert [e["id"] for e in newest["data"]] == ordered[::-1]


def test_rows_are_checked_against_the_evals_item_schema(ports: fakes.Ports) -> None:
    who = owner()
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    ev = service.create_eval(
        who,
        OpenAICreateEvalRequest(
            data_source_config={"type": "custom", "item_schema": schema}, testing_criteria=[CHECK]
        ),
        ports=ports,
    )
    for item in ({"a": 4}, {}):
        req = OpenAICreateRunRequest(
            data_source={"type": "jsonl", "source": {"type": "file_content", "content": [{"item": item}]}}
        )
        with pytest.raises(
            InvalidRequestError, match=r"content\[0\]\.item does not match the eval's item_schema"
        ):
            service.create_run(who, ev["id"], req, base_url="http://x", ports=ports)
    bad_schema = {"type": "custom", "item_schema": {"type": "nonsense"}}
    req2 = OpenAICreateEvalRequest(data_source_config=bad_schema, testing_criteria=[CHECK])
    assert param_of(lambda: service.create_eval(who, req2, ports=ports)) == "data_source_config.item_schema"


def test_two_graders_of_one_name_and_an_eval_too_large_to_store_are_400s(ports: fakes.Ports) -> None:
    """Results are reported by grader name: two of one name could not be told apart. An eval
    is stored in DynamoDB items of at most 400 KB: a larger one is a 400, not a failed write."""
    assert param_of(lambda: make_eval(ports, owner(), [CHECK, CHECK])) == "testing_criteria[1].name"
    long = "{{sample.output_text}}" + "x" * 9_000
    graders = [{**CHECK, "name": f"g{i}", "input": long} for i in range(40)]
    assert param_of(lambda: make_eval(ports, owner(), graders)) == "testing_criteria"
    assert ports.openai.docs == {}  # nothing stored


def test_a_multipart_body_without_its_boundary_is_a_400_not_a_500() -> None:
    from assay_service.handlers.api.app import _body_problem

    event = {"body": "YWJj", "isBase64Encoded": True, "headers": {"content-type": "multipart/form-data"}}
    assert _body_problem(event, multipart=True) == (
        400,
        "headers.content-type: multipart/form-data without its boundary",
    )
    event["headers"] = {"content-type": "multipart/form-data; boundary=x"}
    assert _body_problem(event, multipart=True) is None
