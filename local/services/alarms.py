"""CloudWatch metric alarm evaluation for the embedded cloud (moto stores alarms but never evaluates them).

:class:`AlarmEvaluator` evaluates every metric alarm in moto's CloudWatch at each tick, with the
semantics of the CloudWatch User Guide ("Evaluating an alarm" and "Configuring how CloudWatch alarms
treat missing data"), and on a state change does what CloudWatch does:

* ``SetAlarmState`` in moto (``DescribeAlarms`` shows ``StateValue``/``StateReason``/``StateReasonData``);
* when ``ActionsEnabled``: the new state's actions (``AlarmActions``/``OKActions``/
  ``InsufficientDataActions``) -- an SNS topic gets ``Publish`` of the alarm notification JSON, a
  Lambda function is invoked asynchronously with the alarm event Lambda actions receive; other action
  types (EC2, Auto Scaling, Systems Manager) are logged and skipped;
* the ``CloudWatch Alarm State Change`` event on the default bus (``source: aws.cloudwatch``,
  ``resources: [alarmArn]``, ``detail: {alarmName, state, previousState, configuration}``), through
  :meth:`local.services.events.EventRouter.put_event` (always, as on AWS, whatever ``ActionsEnabled`` says).

Evaluation, in pure functions tested on their own (:func:`evaluate_datapoints`, :func:`aggregate`,
:func:`evaluation_windows`, :func:`evaluate_expression`):

* The evaluation range is the last ``EvaluationPeriods`` *complete* periods: windows of ``Period``
  seconds that end at the last boundary at or before ``now`` (boundaries every ``min(Period, 60)``
  seconds from the epoch: CloudWatch evaluates standard alarms once a minute on minute boundaries, and
  high-resolution ones every ``Period``). The period still in progress is never evaluated. AWS looks
  further back than ``EvaluationPeriods`` when points are missing (by an undocumented amount); this
  emulation does not.
* A datapoint breaches when ``value <op> Threshold`` (``GreaterThanOrEqualToThreshold``,
  ``GreaterThanThreshold``, ``LessThanThreshold``, ``LessThanOrEqualToThreshold``).
* With all ``N`` datapoints present: ALARM when at least ``DatapointsToAlarm`` (M, default N) breach,
  else OK.
* With some missing, per ``TreatMissingData``: ``breaching``/``notBreaching`` fill them in and
  evaluate M of N; ``missing`` (the default) evaluates the present points only -- ALARM when at least
  ``min(M, present)`` of them breach, else OK (AWS: "all real data points in the evaluation range are
  included ... missing data points [are used] only as few times as possible"); ``ignore`` decides
  only when the missing points cannot change the outcome (M real breaches: ALARM; fewer than M
  breaches even if every missing point breached: OK) and otherwise keeps the current state.
* With all N missing: ``missing`` → INSUFFICIENT_DATA, ``ignore`` → current state, ``breaching`` →
  ALARM, ``notBreaching`` → OK.
* Statistics: ``SampleCount``, ``Sum``, ``Average``, ``Minimum``, ``Maximum`` and percentiles
  ``pNN``/``pNN.N`` (nearest rank over the raw values; CloudWatch's own percentiles are approximate).
  Statistic sets (``StatisticValues``) count for every statistic but percentiles, except a set with
  ``SampleCount`` 1 or ``Minimum == Maximum`` (as CloudWatch documents). Percentiles are not
  available when any value is negative (also as documented): the datapoint counts as missing.
* Metric math alarms (``Metrics``): ``MetricStat`` queries and one ``Expression`` with
  ``ReturnData: true``; expressions of numbers, metric ids (or other expression ids), ``+ - * /``,
  unary minus, parentheses and ``FILL(series, number)``. A result is missing at a period where an
  operand series is missing (unless filled) or on division by zero.

Data source: moto 5.2.5 computes no percentiles (``GetMetricData`` returns nothing for ``p99``),
``GetMetricStatistics`` matches dimensions as a subset (CloudWatch matches the exact set) and
``GetMetricData`` drops the namespace check when dimensions are given. So :class:`MotoMetricSource`
reads the raw datapoints from moto's in-process backend (the embedded cloud runs the server in this
process) and aggregates them here, matching namespace, name, the exact dimension set and ``Unit``.

Not emulated: anomaly-detection alarms (``ThresholdMetricId``, ``LessThanLowerOrGreaterThanUpperThreshold``
and the other band operators), composite alarms, Metrics Insights (``SELECT``) queries, metric math
functions other than ``FILL(m, number)``, cross-account metrics, ``EvaluateLowSampleCountPercentile``
(percentiles are always evaluated), the ``AWS/DynamoDB`` always-ignore rule, alarm history, mute
rules, and the evaluation delay of real CloudWatch. moto creates alarms in ``OK`` with the reason
"Unchecked: Initial alarm creation"; such an alarm is treated as the ``INSUFFICIENT_DATA`` a new
alarm is on AWS, so a first evaluation to INSUFFICIENT_DATA changes moto's state quietly (no actions,
no event), and a first evaluation to OK or ALARM is a change from INSUFFICIENT_DATA.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from local.exceptions import LocalCloudError
from local.services.ticker import Ticker

logger = logging.getLogger(__name__)

OK: Final = "OK"
ALARM: Final = "ALARM"
INSUFFICIENT_DATA: Final = "INSUFFICIENT_DATA"
INITIAL_REASON_PREFIX: Final = "Unchecked: Initial alarm creation"
ALARM_STATE_CHANGE: Final = "CloudWatch Alarm State Change"

COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_OPERATOR_WORDS: Final = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
TREAT_MISSING: Final = frozenset({"missing", "ignore", "breaching", "notBreaching"})
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
REGION_NAMES: Final = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
}


class AlarmEvaluationError(LocalCloudError):
    """An alarm uses something this emulation does not evaluate (see the module docstring)."""


class ExpressionError(AlarmEvaluationError):
    """A metric math expression is malformed or uses an unsupported function."""


# -- raw data and statistics --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Datum:
    """One published datapoint: a single value, or a statistic set (``StatisticValues``)."""

    timestamp: float
    value: float | None = None
    sample_count: float = 1.0
    sum: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None

    @classmethod
    def of(cls, timestamp: float, value: float, unit: str | None = None) -> Datum:
        return cls(timestamp=timestamp, value=value, unit=unit)

    @property
    def total(self) -> float:
        return self.value if self.value is not None else float(self.sum or 0.0)

    @property
    def low(self) -> float:
        return self.value if self.value is not None else float(self.minimum or 0.0)

    @property
    def high(self) -> float:
        return self.value if self.value is not None else float(self.maximum or 0.0)

    def raw_values(self) -> list[float] | None:
        """The individual values, where CloudWatch could compute a percentile from this datum."""
        if self.value is not None:
            return [self.value]
        if self.minimum is not None and (self.sample_count == 1 or self.minimum == self.maximum):
            return [self.minimum] * max(1, round(self.sample_count))
        return None


def is_percentile(statistic: str) -> bool:
    return bool(_PERCENTILE.match(statistic))


def aggregate(statistic: str, data: Sequence[Datum]) -> float | None:
    """CloudWatch's statistic over one period's data; None when the period has no datapoint (missing).

    Percentiles use the nearest rank (the smallest value with at least p% of values at or below it).
    """
    if not data:
        return None
    count = sum(d.sample_count for d in data)
    simple: dict[str, Callable[[], float]] = {
        "SampleCount": lambda: count,
        "Sum": lambda: sum(d.total for d in data),
        "Average": lambda: sum(d.total for d in data) / count,
        "Minimum": lambda: min(d.low for d in data),
        "Maximum": lambda: max(d.high for d in data),
    }
    if statistic in simple:
        return simple[statistic]() if count else None
    match = _PERCENTILE.match(statistic)
    if match is None:
        raise AlarmEvaluationError(f"statistic {statistic!r} is not emulated (SampleCount, Sum, Average, "
                                   "Minimum, Maximum, pNN)")  # fmt: skip
    values: list[float] = []
    for datum in data:
        raw = datum.raw_values()
        if raw is not None:
            values.extend(raw)
    if not values or min(values) < 0:
        return None
    values.sort()
    rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
    return values[rank - 1]


def evaluation_windows(now: float, period: int, count: int) -> list[tuple[float, float]]:
    """The last ``count`` complete ``[start, end)`` windows of ``period`` seconds, oldest first."""
    if period <= 0 or count <= 0:
        raise AlarmEvaluationError(f"period {period} and evaluation periods {count} must be positive")
    step = min(period, 60)
    end = math.floor(now / step) * step
    return [(end - (i + 1) * period, end - i * period) for i in reversed(range(count))]


# -- metric math --------------------------------------------------------------------------------

Series = list[float | None]
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for number, name, symbol in _TOKEN.findall(expression):
        if number:
            tokens.append(("num", number))
        elif name:
            tokens.append(("name", name))
        elif symbol.strip():
            if symbol not in "+-*/(),":
                raise ExpressionError(f"unexpected {symbol!r} in {expression!r}")
            tokens.append(("op", symbol))
    return tokens


def _apply(a: float | None, b: float | None, op: str) -> float | None:
    if a is None or b is None or (op == "/" and b == 0):
        return None
    return a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b


def _combine(left: Series | float, right: Series | float, op: str, length: int) -> Series | float:
    """``left op right`` where either side is a series or a scalar (scalar / 0 is NaN: missing later)."""
    if not isinstance(left, list) and not isinstance(right, list):
        value = _apply(left, right, op)
        return math.nan if value is None else value
    lefts = left if isinstance(left, list) else [left] * length
    rights = right if isinstance(right, list) else [right] * length
    return [_apply(a, b, op) for a, b in zip(lefts, rights, strict=True)]


def evaluate_expression(expression: str, resolve: Callable[[str], Series], length: int) -> Series:
    """Evaluate a metric math ``expression`` over period-aligned series of ``length`` points.

    ``resolve(id)`` gives another query's series. Scalars broadcast; an operation on a missing point
    is missing; ``x / 0`` is missing. Grammar: ``expr := term (('+'|'-') term)*``, ``term := unary
    (('*'|'/') unary)*``, ``unary := '-' unary | atom``, ``atom := number | id | FILL(expr, number) |
    '(' expr ')'``.
    """
    tokens = _tokens(expression)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token[1] != expected):
            raise ExpressionError(f"expected {expected or 'more'} in {expression!r}")
        position += 1
        return token

    def combine(left: Series | float, right: Series | float, op: str) -> Series | float:
        return _combine(left, right, op, length)

    def expr() -> Series | float:
        value = term()
        while (token := peek()) is not None and token[1] in "+-":
            take()
            value = combine(value, term(), token[1])
        return value

    def term() -> Series | float:
        value = unary()
        while (token := peek()) is not None and token[1] in "*/":
            take()
            value = combine(value, unary(), token[1])
        return value

    def unary() -> Series | float:
        if (token := peek()) is not None and token == ("op", "-"):
            take()
            return combine(-1.0, unary(), "*")
        return atom()

    def atom() -> Series | float:
        kind, text = take()
        if kind == "num":
            return float(text)
        if kind == "op" and text == "(":
            value = expr()
            take(")")
            return value
        if kind == "name" and (token := peek()) is not None and token[1] == "(":
            if text != "FILL":
                raise ExpressionError(f"function {text} is not emulated (only FILL(m, number))")
            take("(")
            series = expr()
            take(",")
            fill = expr()
            take(")")
            if isinstance(fill, list):
                raise ExpressionError("FILL's second argument must be a number (REPEAT/LINEAR are not emulated)")
            if not isinstance(series, list):
                return series
            return [fill if v is None else v for v in series]
        if kind == "name":
            return list(resolve(text))
        raise ExpressionError(f"unexpected {text!r} in {expression!r}")

    result = expr()
    if (leftover := peek()) is not None:
        raise ExpressionError(f"unexpected {leftover[1]!r} in {expression!r}")
    if isinstance(result, list):
        return result
    scalar: float | None = None if math.isnan(result) else result
    return [scalar] * length


# -- the decision -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What one evaluation decided: the state (which may equal the current one) and why."""

    state: str
    reason: str
    breaching: int
    present: int


def evaluate_datapoints(  # noqa: PLR0911 - one return per documented rule reads best
    values: Sequence[float | None],
    *,
    threshold: float,
    comparison_operator: str,
    datapoints_to_alarm: int | None = None,
    treat_missing_data: str | None = None,
    current_state: str = INSUFFICIENT_DATA,
) -> Decision:
    """The alarm state for the evaluation range ``values`` (oldest first, None = missing); pure.

    See the module docstring for the rules, which follow the CloudWatch User Guide's "Evaluating an
    alarm" and "Configuring how CloudWatch alarms treat missing data".
    """
    compare = COMPARISONS.get(comparison_operator)
    if compare is None:
        raise AlarmEvaluationError(f"comparison {comparison_operator!r} is not emulated (anomaly detection bands)")
    treat = treat_missing_data or "missing"
    if treat not in TREAT_MISSING:
        raise AlarmEvaluationError(f"TreatMissingData {treat!r} is not one of {sorted(TREAT_MISSING)}")
    n = len(values)
    m = datapoints_to_alarm or n
    present = [v for v in values if v is not None]
    breaching = sum(1 for v in present if compare(v, threshold))
    missing = n - len(present)
    words = _OPERATOR_WORDS[comparison_operator]

    def decided(state: str, reason: str) -> Decision:
        return Decision(state=state, reason=reason, breaching=breaching, present=len(present))

    def crossed(count: int, total: int, *, alarm: bool) -> Decision:
        shown = ", ".join(_fmt(v) for v in present) or "no datapoints"
        if alarm:
            reason = f"Threshold Crossed: {count} out of the last {total} datapoints [{shown}] was {words} the threshold ({_fmt(threshold)}) (minimum {m} datapoint{'s' if m != 1 else ''} for OK -> ALARM transition)."  # noqa: E501
            return decided(ALARM, reason)
        reason = f"Threshold Crossed: no more than {m - 1} out of the last {total} datapoints [{shown}] were {words} the threshold ({_fmt(threshold)}) (minimum {m} datapoint{'s' if m != 1 else ''} for ALARM -> OK transition)."  # noqa: E501
        return decided(OK, reason)

    if missing == 0:
        return crossed(breaching, n, alarm=breaching >= m)
    if treat in ("breaching", "notBreaching"):
        filled = breaching + (missing if treat == "breaching" else 0)
        return crossed(filled, n, alarm=filled >= m)
    if not present:
        if treat == "missing":
            return decided(
                INSUFFICIENT_DATA, f"Insufficient Data: {n} datapoint{'s were' if n != 1 else ' was'} unknown."
            )
        return decided(current_state, "Missing data ignored: the current state is kept.")
    if treat == "missing":
        return crossed(breaching, len(present), alarm=breaching >= min(m, len(present)))
    # ignore: decide only if the missing points cannot change the outcome
    if breaching >= m:
        return crossed(breaching, n, alarm=True)
    if breaching + missing < m:
        return crossed(breaching, n, alarm=False)
    return decided(current_state, "Missing data ignored: the current state is kept.")


def _fmt(value: float) -> str:
    return repr(float(value))


# -- alarm configuration ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MetricQuery:
    """One metric and statistic (the alarm's own, or a ``MetricStat`` of a metric math alarm)."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int
    unit: str | None = None

    @classmethod
    def from_metric_stat(cls, stat: Mapping[str, Any]) -> MetricQuery:
        metric = stat["Metric"]
        return cls(
            namespace=str(metric.get("Namespace", "")),
            metric_name=str(metric["MetricName"]),
            dimensions=_dimensions(metric.get("Dimensions", [])),
            statistic=str(stat["Stat"]),
            period=int(stat["Period"]),
            unit=stat.get("Unit"),
        )


def _dimensions(dimensions: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(d["Name"]), str(d["Value"])) for d in dimensions))


@dataclass(frozen=True, kw_only=True)
class AlarmSpec:
    """A metric alarm as ``DescribeAlarms`` returns it, in the parts evaluation needs."""

    name: str
    arn: str
    threshold: float
    comparison_operator: str
    evaluation_periods: int
    datapoints_to_alarm: int | None
    treat_missing_data: str
    actions_enabled: bool
    actions: Mapping[str, tuple[str, ...]]
    state: str
    description: str | None
    period: int
    queries: Mapping[str, MetricQuery] = field(default_factory=dict)
    expressions: Mapping[str, str] = field(default_factory=dict)
    result_id: str = "m1"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_describe(cls, alarm: Mapping[str, Any]) -> AlarmSpec:
        if alarm.get("ThresholdMetricId"):
            raise AlarmEvaluationError(f"{alarm['AlarmName']}: anomaly detection alarms are not emulated")
        state = str(alarm.get("StateValue", INSUFFICIENT_DATA))
        if str(alarm.get("StateReason", "")).startswith(INITIAL_REASON_PREFIX):
            state = INSUFFICIENT_DATA
        queries: dict[str, MetricQuery] = {}
        expressions: dict[str, str] = {}
        if alarm.get("Metrics"):
            returned = [q["Id"] for q in alarm["Metrics"] if q.get("ReturnData", True)]
            for query in alarm["Metrics"]:
                if "MetricStat" in query:
                    queries[query["Id"]] = MetricQuery.from_metric_stat(query["MetricStat"])
                elif "Expression" in query:
                    if str(query["Expression"]).lstrip().upper().startswith("SELECT"):
                        raise AlarmEvaluationError(f"{alarm['AlarmName']}: Metrics Insights queries are not emulated")
                    expressions[query["Id"]] = str(query["Expression"])
            if len(returned) != 1:
                raise AlarmEvaluationError(f"{alarm['AlarmName']}: exactly one query must have ReturnData")
            result_id = returned[0]
            periods = {q.period for q in queries.values()} or {int(alarm.get("Period") or 60)}
            period = int(alarm.get("Period") or max(periods))
        else:
            statistic = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
            if not statistic:
                raise AlarmEvaluationError(f"{alarm['AlarmName']}: no Statistic or ExtendedStatistic")
            period = int(alarm["Period"])
            result_id = "m1"
            queries[result_id] = MetricQuery(
                namespace=str(alarm.get("Namespace", "")),
                metric_name=str(alarm["MetricName"]),
                dimensions=_dimensions(alarm.get("Dimensions", [])),
                statistic=str(statistic),
                period=period,
                unit=alarm.get("Unit"),
            )
        return cls(
            name=str(alarm["AlarmName"]),
            arn=str(alarm["AlarmArn"]),
            threshold=float(alarm["Threshold"]),
            comparison_operator=str(alarm["ComparisonOperator"]),
            evaluation_periods=int(alarm["EvaluationPeriods"]),
            datapoints_to_alarm=int(alarm["DatapointsToAlarm"]) if alarm.get("DatapointsToAlarm") else None,
            treat_missing_data=str(alarm.get("TreatMissingData") or "missing"),
            actions_enabled=bool(alarm.get("ActionsEnabled", True)),
            actions={
                ALARM: tuple(alarm.get("AlarmActions", [])),
                OK: tuple(alarm.get("OKActions", [])),
                INSUFFICIENT_DATA: tuple(alarm.get("InsufficientDataActions", [])),
            },
            state=state,
            description=alarm.get("AlarmDescription"),
            period=period,
            queries=queries,
            expressions=expressions,
            result_id=result_id,
            raw=alarm,
        )


def alarm_values(spec: AlarmSpec, source: MetricSource, now: float) -> Series:
    """The alarm's datapoints over its evaluation range (oldest first, None = missing)."""
    windows = evaluation_windows(now, spec.period, spec.evaluation_periods)
    cache: dict[str, Series] = {}
    resolving: set[str] = set()

    def resolve(query_id: str) -> Series:
        if query_id in cache:
            return cache[query_id]
        if query_id in resolving:
            raise ExpressionError(f"{spec.name}: expression {query_id} refers to itself")
        resolving.add(query_id)
        if query_id in spec.queries:
            query = spec.queries[query_id]
            # each window of the alarm's period, aggregated at the query's own statistic
            series: Series = [
                aggregate(query.statistic, source.datapoints(query, start, end)) for start, end in windows
            ]
        elif query_id in spec.expressions:
            series = evaluate_expression(spec.expressions[query_id], resolve, len(windows))
        else:
            raise ExpressionError(f"{spec.name}: no query with id {query_id!r}")
        resolving.discard(query_id)
        cache[query_id] = series
        return series

    return resolve(spec.result_id)


# -- where datapoints come from -----------------------------------------------------------------


class MetricSource(Protocol):
    def datapoints(self, query: MetricQuery, start: float, end: float) -> list[Datum]:
        """Raw datapoints of ``query``'s metric (exact dimension set, unit if given) in ``[start, end)``."""
        ...


class MotoMetricSource:
    """Raw datapoints from moto's in-process CloudWatch backend (moto computes no percentiles)."""

    def __init__(self, *, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def datapoints(self, query: MetricQuery, start: float, end: float) -> list[Datum]:
        from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends

        backend = cloudwatch_backends[self.account_id][self.region]
        found: list[Datum] = []
        for datum in list(backend.metric_data):
            if datum.namespace != query.namespace or datum.name != query.metric_name:
                continue
            if tuple(sorted((str(d.name), str(d.value)) for d in datum.dimensions)) != query.dimensions:
                continue
            if query.unit and datum.unit != query.unit:
                continue
            moment = _epoch(datum.timestamp)
            if not start <= moment < end:
                continue
            if isinstance(datum, MetricDatum):
                found.append(Datum(timestamp=moment, value=float(datum.value), unit=datum.unit))
            elif isinstance(datum, MetricAggregatedDatum):
                found.append(
                    Datum(
                        timestamp=moment,
                        sample_count=float(datum.sample_count),
                        sum=float(datum.sum),
                        minimum=float(datum.min),
                        maximum=float(datum.max),
                        unit=datum.unit,
                    )
                )
        return found


def _epoch(moment: Any) -> float:
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return float(moment)


def _iso(moment: float) -> str:
    """CloudWatch's timestamp format in alarm events and notifications: ``2019-10-02T17:04:40.985+0000``."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


# -- the evaluator ------------------------------------------------------------------------------


class EventPublisher(Protocol):
    def put_event(
        self,
        *,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any],
        resources: Sequence[str] = (),
        time: datetime | None = None,
        event_bus_name: str = "default",
    ) -> str: ...


@dataclass(frozen=True, kw_only=True)
class Transition:
    """A state change the evaluator made (returned by :meth:`AlarmEvaluator.evaluate_once`)."""

    alarm_name: str
    previous: str
    state: str
    reason: str
    actions: tuple[str, ...]
    event_published: bool


class AlarmEvaluator:
    """Evaluates moto's metric alarms every ``tick_seconds`` (:meth:`start`) or on demand (:meth:`evaluate_once`).

    ``client_factory(service)`` gives a boto3 client pointed at the moto server; ``events`` publishes
    the state-change event (normally :class:`local.services.events.EventRouter`; without one, ``PutEvents``
    goes straight to moto, which cannot deliver to Lambda targets); ``lambda_invoke_async(arn, event)``
    runs Lambda alarm actions (normally ``LambdaRuntime.invoke_async``; without one, an ``Event``
    ``Invoke`` through the Lambda API); ``metrics`` defaults to :class:`MotoMetricSource`.
    """

    def __init__(
        self,
        client_factory: Callable[[str], Any],
        *,
        region: str,
        account_id: str,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        events: EventPublisher | None = None,
        lambda_invoke_async: Callable[[str, Any], Any] | None = None,
        metrics: MetricSource | None = None,
    ) -> None:
        self._client = client_factory
        self.region = region
        self.account_id = account_id
        self.tick_seconds = tick_seconds
        self._clock = clock
        self._events = events
        self._invoke_async = lambda_invoke_async
        self._metrics = metrics or MotoMetricSource(account_id=account_id, region=region)
        self._ticker = Ticker("local-alarm-evaluator", tick_seconds, self.evaluate_once)
        self._lock = threading.Lock()
        self._reported: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Evaluate in a daemon thread every ``tick_seconds`` until :meth:`stop`."""
        self._ticker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._ticker.stop(timeout_s)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate_once(self, now: float | None = None) -> list[Transition]:
        """Evaluate every metric alarm at ``now`` (default: the clock); returns the state changes made."""
        moment = self._clock() if now is None else now
        with self._lock:
            transitions: list[Transition] = []
            for alarm in self._describe_alarms():
                try:
                    spec = AlarmSpec.from_describe(alarm)
                    decision = evaluate_datapoints(
                        alarm_values(spec, self._metrics, moment),
                        threshold=spec.threshold,
                        comparison_operator=spec.comparison_operator,
                        datapoints_to_alarm=spec.datapoints_to_alarm,
                        treat_missing_data=spec.treat_missing_data,
                        current_state=spec.state,
                    )
                except AlarmEvaluationError as exc:
                    if alarm["AlarmName"] not in self._reported:  # say it once, not every tick
                        self._reported.add(alarm["AlarmName"])
                        logger.warning("alarm %s is not evaluated locally: %s", alarm["AlarmName"], exc)
                    continue
                if transition := self._apply(spec, decision, alarm, moment):
                    transitions.append(transition)
            return transitions

    def _describe_alarms(self) -> list[dict[str, Any]]:
        paginator = self._client("cloudwatch").get_paginator("describe_alarms")
        return [a for page in paginator.paginate(AlarmTypes=["MetricAlarm"]) for a in page.get("MetricAlarms", [])]

    def _apply(self, spec: AlarmSpec, decision: Decision, alarm: Mapping[str, Any], now: float) -> Transition | None:
        moto_state = str(alarm.get("StateValue"))
        if decision.state == spec.state and decision.state == moto_state:
            return None
        reason_data = self._reason_data(spec, decision, now)
        self._client("cloudwatch").set_alarm_state(
            AlarmName=spec.name, StateValue=decision.state, StateReason=decision.reason, StateReasonData=reason_data
        )
        if decision.state == spec.state:  # moto's initial OK stood for INSUFFICIENT_DATA: no change on AWS
            return None
        previous = {
            "value": spec.state,
            "reason": str(alarm.get("StateReason", "")),
            "reasonData": str(alarm.get("StateReasonData", "")) or None,
            "timestamp": _iso(_epoch(alarm["StateUpdatedTimestamp"])) if alarm.get("StateUpdatedTimestamp") else None,
        }
        state = {"value": decision.state, "reason": decision.reason, "reasonData": reason_data, "timestamp": _iso(now)}
        detail = {
            "alarmName": spec.name,
            "state": _drop_none(state),
            "previousState": _drop_none(previous),
            "configuration": _drop_none({"metrics": self._metrics_config(spec), "description": spec.description}),
        }
        actions = spec.actions[decision.state] if spec.actions_enabled else ()
        for action in actions:
            self._run_action(action, spec, alarm, detail, now)
        published = self._publish(spec, detail, now)
        logger.info("alarm %s: %s -> %s (%s)", spec.name, spec.state, decision.state, decision.reason)
        return Transition(
            alarm_name=spec.name,
            previous=spec.state,
            state=decision.state,
            reason=decision.reason,
            actions=tuple(actions),
            event_published=published,
        )

    @staticmethod
    def _reason_data(spec: AlarmSpec, decision: Decision, now: float) -> str:
        data: dict[str, Any] = {
            "version": "1.0",
            "queryDate": _iso(now),
            "period": spec.period,
            "threshold": spec.threshold,
            "evaluatedDatapoints": decision.present,
            "breachingDatapoints": decision.breaching,
        }
        if spec.result_id in spec.queries and not spec.expressions:
            query = spec.queries[spec.result_id]
            data["statistic" if not is_percentile(query.statistic) else "extendedStatistic"] = query.statistic
        return json.dumps(data)

    @staticmethod
    def _metrics_config(spec: AlarmSpec) -> list[dict[str, Any]]:
        def metric_stat(query: MetricQuery) -> dict[str, Any]:
            stat = {
                "metric": {
                    "namespace": query.namespace,
                    "name": query.metric_name,
                    "dimensions": dict(query.dimensions),
                },
                "period": query.period,
                "stat": query.statistic,
            }
            return {**stat, "unit": query.unit} if query.unit else stat

        if not spec.expressions:
            return [{"id": spec.result_id, "metricStat": metric_stat(spec.queries[spec.result_id]), "returnData": True}]
        labels = {q["Id"]: q.get("Label") for q in spec.raw.get("Metrics", [])}
        metrics: list[dict[str, Any]] = []
        for query_id, expression in spec.expressions.items():
            entry = {"id": query_id, "expression": expression, "label": labels.get(query_id)}
            metrics.append(_drop_none({**entry, "returnData": query_id == spec.result_id}))
        for query_id, query in spec.queries.items():
            metrics.append({"id": query_id, "metricStat": metric_stat(query), "returnData": query_id == spec.result_id})
        return metrics

    def _publish(self, spec: AlarmSpec, detail: Mapping[str, Any], now: float) -> bool:
        try:
            if self._events is not None:
                self._events.put_event(
                    source="aws.cloudwatch",
                    detail_type=ALARM_STATE_CHANGE,
                    detail=detail,
                    resources=[spec.arn],
                    time=datetime.fromtimestamp(now, UTC),
                )
            else:
                self._client("events").put_events(
                    Entries=[
                        {
                            "Source": "aws.cloudwatch",
                            "DetailType": ALARM_STATE_CHANGE,
                            "Detail": json.dumps(detail),
                            "Resources": [spec.arn],
                            "Time": datetime.fromtimestamp(now, UTC),
                        }
                    ]
                )
        except Exception:  # the state change stands even if the event cannot be delivered
            logger.exception("alarm %s: the state change event was not published", spec.name)
            return False
        return True

    def _run_action(
        self, action: str, spec: AlarmSpec, alarm: Mapping[str, Any], detail: Mapping[str, Any], now: float
    ) -> None:
        service = action.split(":")[2] if action.count(":") >= 2 else ""
        try:
            if service == "sns":
                subject = f'{detail["state"]["value"]}: "{spec.name}" in {REGION_NAMES.get(self.region, self.region)}'
                self._client("sns").publish(
                    TopicArn=action, Subject=subject[:100], Message=json.dumps(self._notification(spec, alarm, detail))
                )
            elif service == "lambda":
                event = {
                    "source": "aws.cloudwatch",
                    "alarmArn": spec.arn,
                    "accountId": self.account_id,
                    "time": _iso(now),
                    "region": self.region,
                    "alarmData": dict(detail),
                }
                if self._invoke_async is not None:
                    self._invoke_async(action, event)
                else:
                    self._client("lambda").invoke(
                        FunctionName=action, InvocationType="Event", Payload=json.dumps(event)
                    )
            else:
                logger.warning("alarm %s: action %s is not emulated locally", spec.name, action)
        except Exception:  # an action failing does not undo the state change, as on AWS
            logger.exception("alarm %s: action %s failed", spec.name, action)

    def _notification(self, spec: AlarmSpec, alarm: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON CloudWatch publishes to an SNS alarm action."""
        trigger: dict[str, Any] = {
            "Period": spec.period,
            "EvaluationPeriods": spec.evaluation_periods,
            "DatapointsToAlarm": spec.datapoints_to_alarm or spec.evaluation_periods,
            "ComparisonOperator": spec.comparison_operator,
            "Threshold": spec.threshold,
            "TreatMissingData": spec.treat_missing_data,
            "EvaluateLowSampleCountPercentile": str(alarm.get("EvaluateLowSampleCountPercentile", "")),
        }
        if spec.expressions:
            trigger["Metrics"] = alarm.get("Metrics", [])
        else:
            query = spec.queries[spec.result_id]
            extended = is_percentile(query.statistic)
            trigger.update(
                {
                    "MetricName": query.metric_name,
                    "Namespace": query.namespace,
                    "StatisticType": "ExtendedStatistic" if extended else "Statistic",
                    **({"ExtendedStatistic": query.statistic} if extended else {"Statistic": query.statistic.upper()}),
                    "Unit": query.unit,
                    "Dimensions": [{"value": value, "name": name} for name, value in query.dimensions],
                }
            )
        updated = alarm.get("AlarmConfigurationUpdatedTimestamp")
        return {
            "AlarmName": spec.name,
            "AlarmDescription": spec.description,
            "AWSAccountId": self.account_id,
            "AlarmConfigurationUpdatedTimestamp": _iso(_epoch(updated)) if updated else None,
            "NewStateValue": detail["state"]["value"],
            "NewStateReason": detail["state"]["reason"],
            "StateChangeTime": detail["state"]["timestamp"],
            "Region": REGION_NAMES.get(self.region, self.region),
            "AlarmArn": spec.arn,
            "OldStateValue": detail["previousState"]["value"],
            "OKActions": list(spec.actions[OK]),
            "AlarmActions": list(spec.actions[ALARM]),
            "InsufficientDataActions": list(spec.actions[INSUFFICIENT_DATA]),
            "Trigger": trigger,
        }


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
