"""Load the SAM template, translate it offline and resolve its intrinsics.

The template is the single source of truth for AWS and for the local stack, so the
local stack never keeps its own copy of resource settings: it reads ``template.yaml``,
lets ``samtranslator`` expand the serverless resources exactly as CloudFormation would,
and resolves the handful of intrinsic functions itself (moto's CloudFormation cannot
deploy a SAM template faithfully; see docs in the shared runtime facts).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Local paths in these properties are replaced by s3:// placeholders before the
# translation: samtranslator insists on S3 locations, and the local stack never
# uploads code (workers import the package from the working tree instead).
_LOCAL_URI_PROPERTIES: dict[str, str] = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
PLACEHOLDER_BUCKET = "assay-local-placeholder"

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::Region",
        "AWS::AccountId",
        "AWS::Partition",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::URLSuffix",
    }
)

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    """The template uses something the local stack cannot reproduce faithfully."""


# --------------------------------------------------------------------------- loading
class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (``!Ref``, ``!Sub``…) into the
    long ``{"Fn::X": …}`` form. A subclass, so the global SafeLoader stays untouched."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"
    if name == "GetAtt" and isinstance(node, yaml.ScalarNode):
        # ``!GetAtt Res.Attr`` short form; the attribute may itself contain dots.
        value: Any = loader.construct_scalar(node).split(".", 1)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, understanding the short tags."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)  # nosec B506
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} has no Resources section")
    return data


# ----------------------------------------------------------------------- translating
@dataclass(frozen=True)
class TranslatedTemplate:
    """The plain CloudFormation template samtranslator produced, plus what the
    placeholders hid: the state machines' definition files (logical id → path)."""

    resources: dict[str, dict[str, Any]]
    parameters: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    definition_files: dict[str, Path] = field(default_factory=dict)


def prepare_for_translation(
    template: Mapping[str, Any], base_dir: Path
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Replace local code/definition paths with ``s3://`` placeholders.

    Returns the modified copy and the state machines' definition files, which the
    local stack reads itself (it cannot fetch the placeholder from S3).
    """
    prepared = copy.deepcopy(dict(template))
    definition_files: dict[str, Path] = {}
    globals_function = prepared.get("Globals", {}).get("Function", {})
    if isinstance(globals_function.get("CodeUri"), str):
        globals_function["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/Globals/CodeUri"
    for logical_id, resource in prepared["Resources"].items():
        prop = _LOCAL_URI_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties") or {}
        if prop is None or not isinstance(props.get(prop), str):
            continue
        if props[prop].startswith("s3://"):
            if prop == "DefinitionUri":
                raise TemplateError(f"{logical_id}: DefinitionUri on S3 cannot be read by the local stack")
            continue
        if prop == "DefinitionUri":
            definition_files[logical_id] = (base_dir / props[prop]).resolve()
        props[prop] = f"s3://{PLACEHOLDER_BUCKET}/{logical_id}/{prop}"
    return prepared, definition_files


class _NoManagedPolicies:
    """samtranslator only consults this for managed policies given by *name*; the
    template uses inline statements and policy templates, so an empty map is right
    (and a name would then fail loudly in the translator)."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template_path: str | os.PathLike[str]) -> TranslatedTemplate:
    """Load ``template_path`` and expand its SAM resources offline."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # samtranslator needs one
    from samtranslator.translator.transform import transform

    path = Path(template_path)
    prepared, definition_files = prepare_for_translation(load_template(path), path.parent)
    if prepared.get("Conditions"):
        raise TemplateError("Conditions are not supported by the local stack")
    translated = transform(prepared, {}, _NoManagedPolicies())
    return TranslatedTemplate(
        resources=translated["Resources"],
        parameters=translated.get("Parameters", {}),
        outputs=translated.get("Outputs", {}),
        definition_files=definition_files,
    )


# ------------------------------------------------------------------------- resolving
def parameter_values(
    parameters: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each parameter's value as ``Ref`` would return it (a string), from its Default
    unless overridden; overrides are checked against AllowedValues."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(parameters)
    if unknown:
        raise TemplateError(f"unknown parameter override(s): {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in parameters.items():
        if name in overrides:
            value = str(overrides[name])
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} not in {allowed}")
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no Default and no override")
        values[name] = value
    return values


def references(value: Any) -> set[str]:
    """Logical ids (or parameter / pseudo-parameter names) ``value`` refers to."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                return {arg}
            if key == "Fn::GetAtt":
                return {arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]}
            if key == "Fn::Sub":
                text, local_vars = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                names = {m.split(".", 1)[0] for m in _SUB_VARIABLE.findall(text)}
                return (names - set(local_vars)) | references(local_vars)
        for item in value.values():
            found |= references(item)
    return found


def dependency_order(resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Logical ids ordered so each comes after everything it references or
    ``DependsOn``; template order breaks ties, a cycle fails loudly."""
    deps: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        refs = references(resource.get("Properties", {})) | set(depends_on)
        deps[logical_id] = {r for r in refs if r in resources and r != logical_id}
    ordered: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise TemplateError(f"dependency cycle: {' -> '.join((*path, node))}")
        state[node] = 1
        for dep in sorted(deps[node], key=list(resources).index):
            visit(dep, (*path, node))
        state[node] = 2
        ordered.append(node)

    for logical_id in resources:
        visit(logical_id, ())
    return ordered


@dataclass
class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join against parameters, pseudo
    parameters and the physical ids/attributes of resources created so far.

    Anything else (Fn::If, Fn::Select, …) raises, so a template change that the local
    stack does not understand is noticed instead of producing a wrong value.
    """

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def register(self, logical_id: str, ref: str, attributes: Mapping[str, str]) -> None:
        """Record a created resource's ``Ref`` value and its ``GetAtt`` attributes."""
        self.refs[logical_id] = ref
        self.attributes[logical_id] = dict(attributes)

    def pseudo(self, name: str) -> str:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:"
                f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::URLSuffix": "amazonaws.com",
        }[name]

    def ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref to unknown or not yet created {name!r}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"GetAtt {logical_id}.{attribute}: unknown resource or attribute") from None

    def sub(self, text: str, local_vars: Mapping[str, Any] | None = None) -> str:
        resolved_vars = {k: self.resolve(v) for k, v in (local_vars or {}).items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved_vars:
                return str(resolved_vars[name])
            if "." in name and name not in PSEUDO_PARAMETERS:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        # ``${!Literal}`` is CloudFormation's escape for a literal ``${Literal}``.
        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its concrete value."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg)
                return self.sub(arg[0], arg[1])
            if key == "Fn::Join":
                delimiter, items = arg
                return delimiter.join(str(v) for v in self.resolve(items))
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"intrinsic {key} is not supported by the local stack")
        return {k: self.resolve(v) for k, v in value.items()}
