"""The local stack's template loader, translation prep and intrinsic resolver."""

from __future__ import annotations

from pathlib import Path

import pytest
from assay_local.template import (
    PLACEHOLDER_BUCKET,
    Resolver,
    TemplateError,
    dependency_order,
    load_template,
    parameter_values,
    prepare_for_translation,
    references,
    translate,
)

REPO = Path(__file__).resolve().parents[2]


def _resolver(**refs: str) -> Resolver:
    resolver = Resolver(
        stack_name="assay-local",
        region="us-east-1",
        account_id="123456789012",
        parameters={"LogLevel": "INFO", "Size": "100"},
    )
    for logical_id, ref in refs.items():
        resolver.register(logical_id, ref, {"Arn": f"arn:aws:x:::{ref}"})
    return resolver


def test_short_tags_become_long_form(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  A:\n"
        "    Type: X\n"
        "    Properties:\n"
        "      R: !Ref B\n"
        "      G: !GetAtt B.Arn\n"
        "      G2: !GetAtt [B, Arn]\n"
        "      S: !Sub '${B}-x'\n"
        "      S2: !Sub ['${v}', {v: !Ref B}]\n"
        "      J: !Join ['-', [a, !Ref B]]\n"
        "      I: !If [Cond, a, b]\n"
    )
    props = load_template(path)["Resources"]["A"]["Properties"]
    assert props["R"] == {"Ref": "B"}
    assert props["G"] == {"Fn::GetAtt": ["B", "Arn"]}
    assert props["G2"] == {"Fn::GetAtt": ["B", "Arn"]}
    assert props["S"] == {"Fn::Sub": "${B}-x"}
    assert props["S2"] == {"Fn::Sub": ["${v}", {"v": {"Ref": "B"}}]}
    assert props["J"] == {"Fn::Join": ["-", ["a", {"Ref": "B"}]]}
    assert props["I"] == {"Fn::If": ["Cond", "a", "b"]}


def test_invalid_yaml_is_reported_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("Resources:\n  A: { Path: /v1/{id}, Method: GET }\n")
    with pytest.raises(TemplateError, match="bad.yaml is not valid YAML"):
        load_template(path)


def test_resolver_handles_ref_getatt_sub_join_and_pseudo_parameters() -> None:
    r = _resolver(Table="assay-local-Table")
    assert r.resolve({"Ref": "Table"}) == "assay-local-Table"
    assert r.resolve({"Ref": "LogLevel"}) == "INFO"
    assert r.resolve({"Fn::GetAtt": ["Table", "Arn"]}) == "arn:aws:x:::assay-local-Table"
    assert r.resolve({"Fn::Sub": "${Table.Arn}/index/GSI1"}) == "arn:aws:x:::assay-local-Table/index/GSI1"
    assert (
        r.resolve({"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:x"})
        == "arn:aws:states:us-east-1:123456789012:x"
    )
    assert r.resolve({"Fn::Sub": "${AWS::StackName}.${AWS::URLSuffix}"}) == ("assay-local.amazonaws.com")
    assert r.resolve({"Fn::Sub": ["${a}-${Size}", {"a": {"Ref": "Table"}}]}) == ("assay-local-Table-100")
    assert r.resolve({"Fn::Sub": "${!Literal}"}) == "${Literal}"
    assert r.resolve({"Fn::Join": [":", ["a", {"Ref": "Size"}]]}) == "a:100"
    assert r.resolve({"k": [{"Ref": "Size"}, 1]}) == {"k": ["100", 1]}


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Fn::GetAtt": ["Table", "StreamArn"]},
        {"Fn::Sub": "${Missing.Arn}"},
        {"Fn::If": ["C", "a", "b"]},
        {"Fn::Select": [0, ["a"]]},
    ],
)
def test_resolver_fails_loudly(value: object) -> None:
    with pytest.raises(TemplateError):
        _resolver(Table="t").resolve(value)


def test_parameter_values_defaults_overrides_and_allowed_values() -> None:
    params = {"LogLevel": {"Default": "INFO", "AllowedValues": ["INFO", "DEBUG"]}, "N": {"Default": 5}}
    assert parameter_values(params) == {"LogLevel": "INFO", "N": "5"}
    assert parameter_values(params, {"LogLevel": "DEBUG"})["LogLevel"] == "DEBUG"
    with pytest.raises(TemplateError):
        parameter_values(params, {"LogLevel": "LOUD"})
    with pytest.raises(TemplateError):
        parameter_values(params, {"Nope": "1"})


def test_references_and_dependency_order() -> None:
    resources = {
        "Fn": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "T": {"Ref": "Table"}}},
        "Sm": {"Properties": {"S": {"Fn::Sub": ["${x} ${Fn.Arn} ${AWS::Region}", {"x": "1"}]}}},
        "Role": {"Properties": {}},
        "Table": {"Properties": {}, "DependsOn": "Role"},
    }
    assert references(resources["Sm"]["Properties"]) == {"Fn", "AWS::Region"}
    order = dependency_order(resources)
    assert order.index("Role") < order.index("Table") < order.index("Fn") < order.index("Sm")


def test_dependency_cycle_fails() -> None:
    with pytest.raises(TemplateError, match="cycle"):
        dependency_order({"A": {"Properties": {"x": {"Ref": "B"}}}, "B": {"Properties": {"x": {"Ref": "A"}}}})


def test_prepare_replaces_local_uris_and_keeps_definition_files(tmp_path: Path) -> None:
    template = {
        "Globals": {"Function": {"CodeUri": "functions/"}},
        "Resources": {
            "Sm": {"Type": "AWS::Serverless::StateMachine", "Properties": {"DefinitionUri": "sm.json"}},
            "Layer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "l/"}},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://b/k.zip"}},
        },
    }
    prepared, files = prepare_for_translation(template, tmp_path)
    assert prepared["Globals"]["Function"]["CodeUri"].startswith(f"s3://{PLACEHOLDER_BUCKET}/")
    assert prepared["Resources"]["Sm"]["Properties"]["DefinitionUri"].startswith("s3://")
    assert prepared["Resources"]["Layer"]["Properties"]["ContentUri"].startswith("s3://")
    assert prepared["Resources"]["Fn"]["Properties"]["CodeUri"] == "s3://b/k.zip"
    assert files == {"Sm": (tmp_path / "sm.json").resolve()}
    assert template["Globals"]["Function"]["CodeUri"] == "functions/"  # input untouched


def test_repo_template_translates_offline() -> None:
    translated = translate(REPO / "template.yaml")
    types = {r["Type"] for r in translated.resources.values()}
    assert "AWS::ApiGatewayV2::Api" in types
    assert not any(t.startswith("AWS::Serverless::") for t in types)
    assert translated.definition_files["EvalRunStateMachine"] == (REPO / "statemachine" / "eval_run.asl.json")


def test_local_stack_drops_only_moto_s_documented_map_warning():
    import logging

    from assay_local.stack import _not_the_documented_map_warning

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("moto", logging.WARNING, __file__, 1, message, None, None)

    # GIVEN moto's warning, documented in docs/local-stack.md, and another one
    documented = record("ToleratedFailurePercentage declarations currently have no effect")
    other = record("JSONata is not supported")
    # THEN only the documented one is dropped
    assert not _not_the_documented_map_warning(documented)
    assert _not_the_documented_map_warning(other)
    assert (
        "ToleratedFailurePercentage"
        in (Path(__file__).resolve().parents[2] / "docs" / "local-stack.md").read_text()
    )
