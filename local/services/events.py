"""EventBridge rule delivery for the embedded cloud: pattern matching and Lambda / SNS / Step Functions targets.

What moto 5.2.5 does on ``PutEvents`` (checked in ``moto/events/models.py``): for every rule on the
bus it calls ``Rule.send_to_targets``, which matches the pattern and delivers only to CloudWatch Logs,
archives, SQS, other buses and API destinations -- a Lambda, SNS or Step Functions target raises
``NotImplementedError`` (the whole ``PutEvents`` call fails with HTTP 500). It also ignores the rule's
``State`` and treats a rule without a pattern (a schedule) as matching every event.

:class:`EventRouter` replaces ``moto.events.models.Rule.send_to_targets`` (:meth:`EventRouter.install`)
so that every ``PutEvents`` -- the user's and the alarm evaluator's (:meth:`EventRouter.put_event`) --
is routed as EventBridge does:

* only ``ENABLED`` rules with an ``EventPattern`` take part; the pattern is matched by :func:`matches`;
* Lambda targets are invoked asynchronously through the in-process runtime
  (:meth:`local.services.lambdas.LambdaRuntime.invoke_async`), SNS targets get ``Publish``, Step Functions
  targets get ``StartExecution``; other targets (SQS, logs, buses, archives) are left to moto;
* the payload is the event in EventBridge's shape (``time`` as ``YYYY-MM-DDTHH:MM:SSZ``), or the
  target's ``Input`` (parsed JSON), ``InputPath`` (``$``, ``$.a.b``, ``$.a[0]``) or
  ``InputTransformer`` (``InputPathsMap`` + ``InputTemplate`` with ``<name>`` placeholders and the
  predefined ``<aws.events.event.json>``, ``<aws.events.rule-name>``, ``<aws.events.rule-arn>``).

Event-pattern subset (:func:`matches`): nested objects; arrays of alternatives; exact strings, numbers,
booleans and ``null``; an event array matches when any element does; ``prefix`` and ``suffix`` (string
or ``{"equals-ignore-case": ...}``), ``equals-ignore-case``, ``anything-but`` (a value, a list, or
``{"prefix": ...}`` / ``{"suffix": ...}``), ``numeric`` (``<``, ``<=``, ``=``, ``>=``, ``>`` pairs),
``exists``, and ``$or``. Not emulated: ``wildcard``, ``cidr``, ``anything-but`` with
``equals-ignore-case`` or ``wildcard``, target ``RetryPolicy`` / ``DeadLetterConfig``, role checks,
cross-account delivery rules, archives replay through this path. Schedules fire through
:mod:`local.services.schedules` (``rate(...)`` only).
"""

from __future__ import annotations

import copy
import json
import logging
import operator
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from local.exceptions import LocalCloudError
from local.services.lambdas import LambdaRuntime

logger = logging.getLogger(__name__)

LOCAL_TARGET_SERVICES: Final = frozenset({"lambda", "sns", "states"})
_NUMERIC_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r'("?)<([A-Za-z0-9_.\-]+)>("?)')


class EventPatternError(LocalCloudError):
    """An event pattern uses a filter this emulation does not know."""


class InputPathError(LocalCloudError):
    """A target's ``InputPath`` (or an ``InputPathsMap`` entry) is not a JSONPath this emulation reads."""


# -- pattern matching ---------------------------------------------------------------------------

_MISSING: Final = object()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when ``event`` matches the EventBridge ``pattern`` (the subset in the module docstring).

    An empty pattern matches nothing (EventBridge rejects it; a schedule rule has none).
    """
    return bool(pattern) and _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_match_object(branch, event) for branch in expected):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if not isinstance(value, Mapping) or not _match_object(expected, value):
                return False
        elif isinstance(expected, list):
            if not _match_alternatives(expected, value):
                return False
        else:
            raise EventPatternError(f"pattern field {key!r} must be an object or an array, got {expected!r}")
    return True


def _match_alternatives(alternatives: Sequence[Any], value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    for alternative in alternatives:
        if isinstance(alternative, Mapping):
            if _match_filter(alternative, value, candidates):
                return True
        elif any(c is not _MISSING and _same(c, alternative) for c in candidates):
            return True
    return False


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(value) == float(expected)
    return bool(value == expected)


def _match_filter(content_filter: Mapping[str, Any], value: Any, candidates: Sequence[Any]) -> bool:
    if len(content_filter) != 1:
        raise EventPatternError(f"a content filter has exactly one key: {dict(content_filter)!r}")
    name, argument = next(iter(content_filter.items()))
    if name == "exists":
        return (value is not _MISSING) == bool(argument)
    present = [c for c in candidates if c is not _MISSING]
    if name == "anything-but":
        return bool(present) and all(not _anything_but_hit(argument, c) for c in present)
    test = _string_test(name, argument) if name != "numeric" else _numeric_test(argument)
    return any(test(c) for c in present)


def _string_test(name: str, argument: Any) -> Callable[[Any], bool]:
    ignore_case = isinstance(argument, Mapping) and "equals-ignore-case" in argument
    text = argument["equals-ignore-case"] if ignore_case else argument

    def fold(s: str) -> str:
        return s.lower() if ignore_case or name == "equals-ignore-case" else s

    checks: dict[str, Callable[[str], bool]] = {
        "prefix": lambda s: fold(s).startswith(fold(text)),
        "suffix": lambda s: fold(s).endswith(fold(text)),
        "equals-ignore-case": lambda s: s.lower() == str(text).lower(),
    }
    if name not in checks or not isinstance(text, str):
        raise EventPatternError(f"content filter {name!r}: {argument!r} is not emulated")
    check = checks[name]
    return lambda candidate: isinstance(candidate, str) and check(candidate)


def _numeric_test(argument: Sequence[Any]) -> Callable[[Any], bool]:
    pairs = list(zip(argument[::2], argument[1::2], strict=True))
    if not pairs or any(op not in _NUMERIC_OPS for op, _ in pairs):
        raise EventPatternError(f"numeric filter {argument!r} is not emulated")

    def test(candidate: Any) -> bool:
        if isinstance(candidate, bool) or not isinstance(candidate, int | float):
            return False
        return all(_NUMERIC_OPS[op](float(candidate), float(bound)) for op, bound in pairs)

    return test


def _anything_but_hit(argument: Any, candidate: Any) -> bool:
    """True when ``candidate`` is one of the things ``anything-but`` excludes."""
    if isinstance(argument, Mapping):
        name, inner = next(iter(argument.items()))
        if name in ("prefix", "suffix"):
            return _string_test(name, inner)(candidate)
        raise EventPatternError(f"anything-but {argument!r} is not emulated")
    excluded = argument if isinstance(argument, list) else [argument]
    return any(_same(candidate, e) for e in excluded)


# -- target input -------------------------------------------------------------------------------


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail.state``, ``$.resources[0]``); None when absent."""
    if not path.startswith("$"):
        raise InputPathError(f"{path!r} is not a JSONPath")
    rest, value = path[1:], document
    position = 0
    for match in _PATH_PART.finditer(rest):
        if match.start() != position:
            raise InputPathError(f"{path!r} is not a JSONPath this emulation reads")
        position = match.end()
        key, index = match.groups()
        if key is not None:
            value = value.get(key) if isinstance(value, Mapping) else None
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    if position != len(rest):
        raise InputPathError(f"{path!r} is not a JSONPath this emulation reads")
    return value


def target_input(
    target: Mapping[str, Any], event: Mapping[str, Any], *, rule_name: str = "", rule_arn: str = ""
) -> Any:
    """What EventBridge sends a target: the event, or per ``Input`` / ``InputPath`` / ``InputTransformer``."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        return json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if not transformer:
        return dict(event)
    values: dict[str, Any] = {
        name: json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()
    }
    values.update({"aws.events.event.json": event, "aws.events.rule-name": rule_name, "aws.events.rule-arn": rule_arn})

    def substitute(match: re.Match[str]) -> str:
        open_quote, name, close_quote = match.groups()
        if name not in values:
            return match.group(0)
        value = values[name]
        if open_quote and close_quote:  # "<name>" inside a JSON string: the raw text goes in
            inner = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(inner)
        return f"{open_quote}{value if isinstance(value, str) else json.dumps(value)}{close_quote}"

    rendered = _PLACEHOLDER.sub(substitute, str(transformer.get("InputTemplate", "")))
    try:
        return json.loads(rendered)
    except ValueError:
        return rendered


def eventbridge_event(message: Mapping[str, Any]) -> dict[str, Any]:
    """moto's internal event message → EventBridge's event shape (ISO ``time``, no ``ingestion-time``)."""
    event = {key: value for key, value in message.items() if key != "ingestion-time"}
    moment = event.get("time")
    if isinstance(moment, int | float):
        event["time"] = datetime.fromtimestamp(float(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(moment, datetime):
        event["time"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event.setdefault("version", "0")
    event.setdefault("id", str(uuid.uuid4()))
    return event


# -- the router ---------------------------------------------------------------------------------


class EventRouter:
    """Routes EventBridge events to Lambda, SNS and Step Functions targets (see the module docstring).

    ``client_factory("sns")`` gives a boto3 client pointed at the moto server. Install after the
    Lambda runtime is installed and before anything puts events; uninstall before the server stops.
    Process-global while installed (it patches a moto class).
    """

    def __init__(
        self, lambdas: LambdaRuntime, client_factory: Callable[[str], Any], *, region: str, account_id: str
    ) -> None:
        self._lambdas = lambdas
        self._client = client_factory
        self.region = region
        self.account_id = account_id
        self._original: Callable[..., None] | None = None
        self.delivered: list[tuple[str, str]] = []
        """``(rule name, target ARN)`` per delivery made here, for tests and diagnostics."""

    def install(self) -> None:
        if self._original is not None:
            return
        from moto.events import models as events_models

        router = self
        original: Callable[..., None] = events_models.Rule.send_to_targets
        self._original = original

        def send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
            router._route(rule, original_event, transform_input, original)

        events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is None:
            return
        from moto.events import models as events_models

        events_models.Rule.send_to_targets = self._original  # type: ignore[method-assign]
        self._original = None

    def put_event(
        self,
        *,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any],
        resources: Sequence[str] = (),
        time: datetime | None = None,
        event_bus_name: str = "default",
    ) -> str:
        """``PutEvents`` one event on ``event_bus_name`` through moto (so moto's own targets get it too)."""
        entry: dict[str, Any] = {
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "Resources": list(resources),
            "EventBusName": event_bus_name,
        }
        if time is not None:
            entry["Time"] = time
        response = self._client("events").put_events(Entries=[entry])
        result = response["Entries"][0]
        if "EventId" not in result:
            raise LocalCloudError(f"PutEvents rejected the event: {result}")
        return str(result["EventId"])

    # -- internals ----------------------------------------------------------------------------

    def _route(self, rule: Any, message: Any, transform_input: bool, original: Callable[..., None]) -> None:
        if getattr(rule, "state", "ENABLED") != "ENABLED":
            return
        pattern = rule.event_pattern.get_pattern()
        event = eventbridge_event(message)
        try:
            if not matches(pattern, event):
                return
        except EventPatternError:
            logger.warning("rule %s: pattern not emulated, nothing delivered", rule.name, exc_info=True)
            return
        local = [t for t in rule.targets if _service(t["Arn"]) in LOCAL_TARGET_SERVICES]
        others = [t for t in rule.targets if _service(t["Arn"]) not in LOCAL_TARGET_SERVICES]
        for target in local:
            self.deliver(rule_name=str(rule.name), rule_arn=str(rule.arn), target=target, event=event)
        if others:
            shallow = copy.copy(rule)
            shallow.targets = others
            shallow.event_pattern = _MatchAll()
            original(shallow, message, transform_input)

    def deliver(self, *, rule_name: str, rule_arn: str, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Deliver ``event`` to one Lambda, SNS or Step Functions target of a rule (a pattern's or a schedule's)."""
        arn = str(target["Arn"])
        if _service(arn) not in LOCAL_TARGET_SERVICES:
            logger.warning("rule %s: target %s is not delivered locally", rule_name, arn)
            return
        try:
            payload = target_input(target, event, rule_name=rule_name, rule_arn=rule_arn)
            service = _service(arn)
            if service == "lambda":
                self._lambdas.invoke_async(arn, payload)
            elif service == "sns":
                message = payload if isinstance(payload, str) else json.dumps(payload)
                self._client("sns").publish(TopicArn=arn, Message=message)
            else:
                self._client("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(payload))
        except Exception:  # delivery is best effort, as on AWS (which would retry, then drop or DLQ)
            logger.exception("rule %s: delivery to %s failed", rule_name, arn)
            return
        self.delivered.append((rule_name, arn))


class _MatchAll:
    """Stands in for moto's pattern once :func:`matches` has decided."""

    @staticmethod
    def matches_event(_event: Any) -> bool:
        return True

    @staticmethod
    def get_pattern() -> dict[str, Any]:
        return {}


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""
