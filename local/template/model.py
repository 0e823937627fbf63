"""A small model of a CloudFormation template: parameters, conditions, resources in order, intrinsics.

What it reads: ``Parameters`` (defaults or overrides; SSM-typed parameters such as CDK's
``BootstrapVersion`` resolve to :data:`SSM_PARAMETER_PLACEHOLDER`, since there is no SSM to ask
before the stack exists), ``Mappings``, ``Conditions``, ``Resources`` (properties, ``DependsOn``,
``Condition``, ``Metadata``) and ``Outputs``. ``Rules`` (CDK's ``CheckBootstrapVersion``) and
``Transform`` are ignored.

Intrinsics resolved: ``Ref``, ``Fn::GetAtt`` (list and dotted forms), ``Fn::Join``, ``Fn::Sub``
(string and ``[string, variables]`` forms, ``${!Literal}`` escapes), ``Fn::Select``, ``Fn::Split``,
``Fn::If``, ``Fn::Equals`` / ``Fn::Not`` / ``Fn::And`` / ``Fn::Or`` / ``Condition`` in conditions,
``Fn::GetAZs`` (three made-up zones ``<region>a..c``), ``Fn::Base64``, ``Fn::FindInMap``,
``Fn::ToJsonString`` and the pseudo parameters ``AWS::Region``, ``AWS::AccountId``,
``AWS::Partition``, ``AWS::StackName``, ``AWS::StackId``, ``AWS::URLSuffix``,
``AWS::NotificationARNs`` and ``AWS::NoValue`` (which drops the key or list item holding it).
Not resolved (a :class:`TemplateError` says so): ``Fn::ImportValue`` (no other stacks exist
locally), ``Fn::Cidr``, ``Fn::GetStackOutputs`` and other rarities.

Differences from CloudFormation: references are checked when the template is loaded (as
CloudFormation's validation does), but a ``Ref`` to a resource whose condition is false only fails
when it is resolved.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from local.exceptions import TemplateError, UnresolvableReferenceError

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account
SSM_PARAMETER_PLACEHOLDER: Final = "local-ssm-parameter-placeholder"

_SUB_PATTERN: Final = re.compile(r"\$\{([^}]*)\}")
PSEUDO_PARAMETERS: Final = frozenset(
    {
        "AWS::Region",
        "AWS::AccountId",
        "AWS::Partition",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::URLSuffix",
        "AWS::NotificationARNs",
        "AWS::NoValue",
    }
)


class _NoValue:
    """The value of ``Ref: AWS::NoValue``: the key or list item holding it disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One entry of ``Resources``, unresolved."""

    logical_id: str
    type: str
    properties: Mapping[str, Any]
    depends_on: frozenset[str]
    """Every resource this one needs first: explicit ``DependsOn`` plus every reference."""
    condition: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def asset_path(self) -> str | None:
        """CDK's ``aws:asset:path`` metadata: the asset directory, relative to the cloud assembly."""
        value = self.metadata.get("aws:asset:path")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, kw_only=True)
class Output:
    """One entry of ``Outputs``, unresolved."""

    key: str
    value: Any
    condition: str | None = None
    description: str | None = None


@dataclass
class DeployedState:
    """What deployment has learnt so far: each resource's physical id (its ``Ref``) and attributes."""

    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    placeholders: set[str] = field(default_factory=set)
    """Resources that are not emulated: any attribute of theirs resolves to a placeholder string."""

    def record(self, logical_id: str, physical_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.physical_ids[logical_id] = physical_id
        self.attributes[logical_id] = dict(attributes or {})

    def record_placeholder(self, logical_id: str, physical_id: str) -> None:
        self.record(logical_id, physical_id)
        self.placeholders.add(logical_id)

    def ref(self, logical_id: str) -> str:
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise UnresolvableReferenceError(f"Ref to {logical_id!r}, which has not been created") from None

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.physical_ids:
            raise UnresolvableReferenceError(f"Fn::GetAtt of {logical_id!r}, which has not been created")
        attributes = self.attributes.get(logical_id, {})
        if attribute in attributes:
            return attributes[attribute]
        if logical_id in self.placeholders:
            return f"local-not-emulated:{logical_id}.{attribute}"
        raise UnresolvableReferenceError(
            f"Fn::GetAtt {logical_id}.{attribute}: the local deployment records only {sorted(attributes)}"
        )


class Template:
    """A parsed template for one stack in one (emulated) account and region."""

    def __init__(
        self,
        body: Mapping[str, Any],
        *,
        stack_name: str,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(body.get("Resources"), Mapping):
            raise TemplateError("the template has no Resources")
        self.body = body
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = "aws-cn" if region.startswith("cn-") else "aws"
        self.url_suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
        self.stack_id = (
            f"arn:{self.partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/"
            "00000000-0000-0000-0000-000000000000"
        )
        self.mappings: Mapping[str, Any] = body.get("Mappings", {})
        self.parameters = self._read_parameters(body.get("Parameters", {}), parameter_overrides or {})
        self._conditions: Mapping[str, Any] = body.get("Conditions", {})
        self._condition_values: dict[str, bool] = {}
        self.resources = {
            logical_id: self._read_resource(logical_id, definition)
            for logical_id, definition in body["Resources"].items()
        }
        self.outputs = {
            key: Output(
                key=key,
                value=definition.get("Value"),
                condition=definition.get("Condition"),
                description=definition.get("Description"),
            )
            for key, definition in body.get("Outputs", {}).items()
        }
        self._check_references()

    @classmethod
    def from_file(cls, path: Path, *, stack_name: str | None = None, **kwargs: Any) -> Template:
        """Read ``path``; the stack name defaults to the file name less ``.template.json``."""
        name = stack_name or path.name.removesuffix(".json").removesuffix(".template")
        return cls(json.loads(path.read_text()), stack_name=name, **kwargs)

    # -- parameters and conditions ------------------------------------------------------------

    def _read_parameters(self, declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"parameter overrides for undeclared parameters: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            kind = str(spec.get("Type", "String"))
            if name in overrides:
                raw: Any = overrides[name]
            elif kind.startswith("AWS::SSM::Parameter::Value<"):
                raw = SSM_PARAMETER_PLACEHOLDER
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                raise TemplateError(f"parameter {name!r} has no default and no value was given")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                values[name] = raw if isinstance(raw, list) else [item.strip() for item in str(raw).split(",")]
            else:
                values[name] = str(raw)
        return values

    def condition_holds(self, name: str) -> bool:
        """Evaluate the named condition (cached)."""
        if name not in self._condition_values:
            if name not in self._conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_values[name] = _truth(Resolver(self, DeployedState()).condition(self._conditions[name]))
        return self._condition_values[name]

    # -- resources ----------------------------------------------------------------------------

    def _read_resource(self, logical_id: str, definition: Mapping[str, Any]) -> Resource:
        if "Type" not in definition:
            raise TemplateError(f"resource {logical_id!r} has no Type")
        explicit = definition.get("DependsOn", [])
        explicit = [explicit] if isinstance(explicit, str) else list(explicit)
        properties = definition.get("Properties", {})
        referenced = {name for name in _referenced_names(properties) if name in self.body["Resources"]}
        return Resource(
            logical_id=logical_id,
            type=str(definition["Type"]),
            properties=properties,
            depends_on=frozenset(explicit) | frozenset(referenced - {logical_id}),
            condition=definition.get("Condition"),
            metadata=definition.get("Metadata", {}),
        )

    def _check_references(self) -> None:
        known = set(self.parameters) | PSEUDO_PARAMETERS | set(self.resources)
        problems: list[str] = []
        for resource in self.resources.values():
            for name in _referenced_names(resource.properties):
                if name not in known:
                    problems.append(f"{resource.logical_id} refers to unknown {name!r}")
            for name in resource.depends_on - set(self.resources):
                problems.append(f"{resource.logical_id} depends on unknown {name!r}")
            if resource.condition and resource.condition not in self._conditions:
                problems.append(f"{resource.logical_id} uses unknown condition {resource.condition!r}")
        if problems:
            raise UnresolvableReferenceError("; ".join(problems))

    def is_active(self, resource: Resource) -> bool:
        """Whether the resource's condition (if any) holds."""
        return resource.condition is None or self.condition_holds(resource.condition)

    def deployment_order(self) -> list[Resource]:
        """Active resources, each after everything it depends on; ties keep template order."""
        active = {r.logical_id: r for r in self.resources.values() if self.is_active(r)}
        position = {logical_id: index for index, logical_id in enumerate(self.resources)}
        ordered: list[Resource] = []
        done: set[str] = set()
        visiting: list[str] = []

        def visit(logical_id: str) -> None:
            if logical_id in done:
                return
            if logical_id in visiting:
                cycle = [*visiting[visiting.index(logical_id) :], logical_id]
                raise TemplateError(f"circular dependency: {' -> '.join(cycle)}")
            visiting.append(logical_id)
            for dependency in sorted(active[logical_id].depends_on & set(active), key=position.__getitem__):
                visit(dependency)
            visiting.pop()
            done.add(logical_id)
            ordered.append(active[logical_id])

        for logical_id in active:
            visit(logical_id)
        return ordered

    def resolver(self, state: DeployedState) -> Resolver:
        return Resolver(self, state)


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise TemplateError(f"a condition evaluated to {value!r}, not a boolean")


def _sub_names(text: str) -> Iterator[str]:
    for match in _SUB_PATTERN.finditer(text):
        name = match.group(1)
        if not name.startswith("!"):
            yield name


def _referenced_names(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value refers to through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _referenced_names(item)
        return
    if not isinstance(value, Mapping):
        return
    if len(value) == 1:
        key, argument = next(iter(value.items()))
        if key == "Ref" and isinstance(argument, str):
            yield argument
            return
        if key == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".", 1)[0]
            if isinstance(target, str):
                yield target
            if isinstance(argument, list):
                yield from _referenced_names(argument[1:])
            return
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            yield from _referenced_names(variables)
            for name in _sub_names(text):
                if name not in variables:
                    yield name.split(".", 1)[0]
            return
    for item in value.values():
        yield from _referenced_names(item)


class Resolver:
    """Resolves intrinsic functions against a template and what has been deployed so far."""

    def __init__(self, template: Template, state: DeployedState) -> None:
        self.template = template
        self.state = state
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Condition": self._condition_ref,
            "Fn::GetAZs": self._get_azs,
            "Fn::Base64": self._base64,
            "Fn::FindInMap": self._find_in_map,
            "Fn::ToJsonString": self._to_json_string,
        }

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value``; ``AWS::NoValue`` drops the key or item holding it."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if isinstance(value, Mapping):
            if len(value) == 1:
                key = next(iter(value))
                if key in self._functions:
                    return self._functions[key](value[key])
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} is not supported by the local template model")
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        return value

    def condition(self, expression: Any) -> Any:
        """Resolve a condition expression (conditions may use Ref to parameters, not to resources)."""
        return self.resolve(expression)

    # -- the functions ------------------------------------------------------------------------

    def _ref(self, name: Any) -> Any:
        template = self.template
        if name in template.parameters:
            return template.parameters[name]
        pseudo: dict[str, Any] = {
            "AWS::Region": template.region,
            "AWS::AccountId": template.account_id,
            "AWS::Partition": template.partition,
            "AWS::StackName": template.stack_name,
            "AWS::StackId": template.stack_id,
            "AWS::URLSuffix": template.url_suffix,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in template.resources:
            return self.state.ref(name)
        raise UnresolvableReferenceError(f"Ref to unknown {name!r}")

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = argument[0], self.resolve(argument[1])
        return self.state.get_att(logical_id, attribute)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        values = self.resolve(items)
        if not isinstance(values, list):
            raise TemplateError(f"Fn::Join needs a list, got {values!r}")
        return str(delimiter).join(_scalar(item) for item in values)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], self.resolve(argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return _scalar(self.state.get_att(logical_id, attribute))
            return _scalar(self._ref(name))

        return _SUB_PATTERN.sub(replace, text)

    def _select(self, argument: Any) -> Any:
        index, items = self.resolve(argument[0]), self.resolve(argument[1])
        try:
            return items[int(index)]
        except (IndexError, ValueError, TypeError) as exc:
            raise TemplateError(f"Fn::Select {index!r} of {items!r}") from exc

    def _split(self, argument: Any) -> list[str]:
        delimiter, text = argument[0], self.resolve(argument[1])
        return str(text).split(delimiter)

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.template.condition_holds(name) else when_false)

    def _equals(self, argument: Any) -> bool:
        left, right = (self.resolve(item) for item in argument)
        return bool(_scalar_or_list(left) == _scalar_or_list(right))

    def _not(self, argument: Any) -> bool:
        return not _truth(self.resolve(argument[0]))

    def _and(self, argument: Any) -> bool:
        return all(_truth(self.resolve(item)) for item in argument)

    def _or(self, argument: Any) -> bool:
        return any(_truth(self.resolve(item)) for item in argument)

    def _condition_ref(self, name: Any) -> bool:
        return self.template.condition_holds(name)

    def _get_azs(self, argument: Any) -> list[str]:
        region = self.resolve(argument) or self.template.region
        return [f"{region}{zone}" for zone in "abc"]

    def _base64(self, argument: Any) -> str:
        return base64.b64encode(_scalar(self.resolve(argument)).encode()).decode()

    def _find_in_map(self, argument: Any) -> Any:
        name, top, second = (self.resolve(item) for item in argument[:3])
        try:
            return self.template.mappings[name][top][second]
        except (KeyError, TypeError) as exc:
            raise TemplateError(f"Fn::FindInMap {name}/{top}/{second} is not in Mappings") from exc

    def _to_json_string(self, argument: Any) -> str:
        return json.dumps(self.resolve(argument), separators=(",", ":"))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"expected a string, got {value!r}")


def _scalar_or_list(value: Any) -> Any:
    return [_scalar(item) for item in value] if isinstance(value, list) else _scalar(value)
