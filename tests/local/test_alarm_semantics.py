"""CloudWatch alarm semantics as the embedded cloud emulates them (:mod:`local.services.alarms`), pure functions only.

Each case reads Given (the evaluation range and the alarm's settings) / When (evaluated) / Then (the
state). The missing-data rows follow the CloudWatch User Guide's "Configuring how CloudWatch alarms
treat missing data" (evaluation periods 3, datapoints to alarm 3; "-" missing, "X" breaching, "0" not).
"""

from __future__ import annotations

from typing import Any

import pytest

from local.services.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmEvaluationError,
    AlarmSpec,
    Datum,
    ExpressionError,
    MetricQuery,
    aggregate,
    alarm_values,
    evaluate_datapoints,
    evaluate_expression,
    evaluation_windows,
)

THRESHOLD = 10.0


def _points(picture: str) -> list[float | None]:
    """``"0 - X"`` → ``[1.0, None, 99.0]`` against THRESHOLD with GreaterThanThreshold."""
    return [{"0": 1.0, "X": 99.0, "-": None}[c] for c in picture.split()]


@pytest.mark.parametrize(
    ("picture", "m", "expected"),
    [
        ("X X X", 3, ALARM),
        ("X 0 X", 3, OK),
        ("X 0 X", 2, ALARM),
        ("0 0 X 0 X", 2, ALARM),
        ("X 0 0 0 0", 2, OK),
        ("0 0 0", None, OK),
        ("X X X", None, ALARM),
    ],
)
def test_m_out_of_n_with_all_datapoints_present(picture: str, m: int | None, expected: str) -> None:
    # Given a full evaluation range  When evaluated  Then ALARM iff at least M datapoints breach
    decision = evaluate_datapoints(
        _points(picture), threshold=THRESHOLD, comparison_operator="GreaterThanThreshold", datapoints_to_alarm=m
    )
    assert decision.state == expected


@pytest.mark.parametrize(
    ("picture", "treat", "current", "expected"),
    [
        # all missing
        ("- - -", "missing", OK, INSUFFICIENT_DATA),
        ("- - -", "ignore", ALARM, ALARM),
        ("- - -", "ignore", OK, OK),
        ("- - -", "breaching", OK, ALARM),
        ("- - -", "notBreaching", ALARM, OK),
        # partial data: one breaching point, two missing
        ("- X -", "missing", OK, ALARM),
        ("- X -", "ignore", OK, OK),
        ("- X -", "ignore", ALARM, ALARM),
        ("- X -", "breaching", OK, ALARM),
        ("- X -", "notBreaching", ALARM, OK),
        # partial data: one good point, two missing
        ("- - 0", "missing", ALARM, OK),
        ("- - 0", "ignore", ALARM, OK),
        ("- - 0", "breaching", ALARM, OK),
        ("- - 0", "notBreaching", ALARM, OK),
        # partial data: two breaching, one missing
        ("X - X", "missing", OK, ALARM),
        ("X - X", "breaching", OK, ALARM),
        ("X - X", "notBreaching", OK, OK),
        ("X - X", "ignore", OK, OK),
        ("X - X", "ignore", INSUFFICIENT_DATA, INSUFFICIENT_DATA),
        (None, "missing", OK, OK),  # default TreatMissingData is missing
    ],
)
def test_treat_missing_data(picture: str | None, treat: str, current: str, expected: str) -> None:
    # Given 3 of 3 and a range with missing datapoints  When evaluated  Then TreatMissingData decides
    values = _points(picture) if picture else _points("0 - -")
    decision = evaluate_datapoints(
        values,
        threshold=THRESHOLD,
        comparison_operator="GreaterThanThreshold",
        datapoints_to_alarm=3,
        treat_missing_data=treat if picture else None,
        current_state=current,
    )
    assert decision.state == expected


@pytest.mark.parametrize(
    ("operator", "value", "breaches"),
    [
        ("GreaterThanThreshold", 10.0, False),
        ("GreaterThanOrEqualToThreshold", 10.0, True),
        ("LessThanThreshold", 10.0, False),
        ("LessThanOrEqualToThreshold", 10.0, True),
        ("LessThanThreshold", 9.0, True),
    ],
)
def test_comparison_operators_at_the_threshold(operator: str, value: float, breaches: bool) -> None:
    decision = evaluate_datapoints([value], threshold=THRESHOLD, comparison_operator=operator)
    assert decision.state == (ALARM if breaches else OK)


def test_anomaly_band_operators_are_refused() -> None:
    with pytest.raises(AlarmEvaluationError):
        evaluate_datapoints([1.0], threshold=1, comparison_operator="LessThanLowerOrGreaterThanUpperThreshold")


def test_the_reason_reads_like_cloudwatchs() -> None:
    decision = evaluate_datapoints([12.0], threshold=THRESHOLD, comparison_operator="GreaterThanThreshold")
    assert decision.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than")


# -- statistics ---------------------------------------------------------------------------------


def _values(*values: float) -> list[Datum]:
    return [Datum.of(0.0, v) for v in values]


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("SampleCount", 10.0),
        ("Sum", 55.0),
        ("Average", 5.5),
        ("Minimum", 1.0),
        ("Maximum", 10.0),
        ("p50", 5.0),
        ("p90", 9.0),
        ("p99", 10.0),
        ("p100", 10.0),
        ("p99.9", 10.0),
    ],
)
def test_statistics_over_raw_values(statistic: str, expected: float) -> None:
    # Given the values 1..10 in one period  When aggregated  Then CloudWatch's statistic (nearest rank)
    assert aggregate(statistic, _values(*range(1, 11))) == expected


def test_values_with_counts_weigh_as_many_samples() -> None:
    # Given PutMetricData Values=[100, 1] Counts=[1, 99] (moto stores one datum per count)
    data = _values(100.0) + _values(*([1.0] * 99))
    # Then p99 is the 99th smallest of 100 and SampleCount is 100
    assert aggregate("p99", data) == 1.0
    assert aggregate("p100", data) == 100.0
    assert aggregate("SampleCount", data) == 100.0


def test_statistic_sets_count_but_give_no_percentile_unless_degenerate() -> None:
    spread = Datum(timestamp=0, sample_count=4, sum=10, minimum=1, maximum=4)
    flat = Datum(timestamp=0, sample_count=3, sum=6, minimum=2, maximum=2)
    assert aggregate("Sum", [spread, flat]) == 16
    assert aggregate("SampleCount", [spread, flat]) == 7
    assert aggregate("Average", [spread]) == 2.5
    assert aggregate("Maximum", [spread, flat]) == 4
    assert aggregate("p50", [spread]) is None
    assert aggregate("p50", [flat]) == 2


def test_an_empty_period_is_missing_and_negative_values_have_no_percentile() -> None:
    assert aggregate("Sum", []) is None
    assert aggregate("p99", _values(-1.0, 5.0)) is None
    with pytest.raises(AlarmEvaluationError):
        aggregate("tm99", _values(1.0))


# -- period boundaries --------------------------------------------------------------------------


def test_only_complete_periods_are_evaluated() -> None:
    # Given now is 125 s into the epoch and Period 60  When the range is built
    windows = evaluation_windows(125.0, 60, 2)
    # Then the period in progress [120, 180) is left out
    assert windows == [(0, 60), (60, 120)]


def test_long_periods_slide_on_minute_boundaries_and_short_ones_on_their_own() -> None:
    assert evaluation_windows(3_725.0, 300, 1) == [(3_420, 3_720)]
    assert evaluation_windows(125.0, 10, 3) == [(90, 100), (100, 110), (110, 120)]


class _Store:
    def __init__(self, data: dict[str, list[Datum]]) -> None:
        self.data = data

    def datapoints(self, query: MetricQuery, start: float, end: float) -> list[Datum]:
        return [d for d in self.data.get(query.metric_name, []) if start <= d.timestamp < end]


def _alarm(**overrides: Any) -> dict[str, Any]:
    alarm: dict[str, Any] = {
        "AlarmName": "latency",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:latency",
        "Namespace": "Sluice",
        "MetricName": "Latency",
        "Dimensions": [{"Name": "Variant", "Value": "canary"}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 100.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Statistic": "Maximum",
        "StateValue": "OK",
        "StateReason": "Unchecked: Initial alarm creation",
    }
    alarm.update(overrides)
    return alarm


def test_a_datapoint_in_the_current_period_does_not_count_yet() -> None:
    # Given a breaching datapoint at 125 s and a good one at 61 s
    store = _Store({"Latency": [Datum.of(61.0, 5.0), Datum.of(125.0, 500.0)]})
    spec = AlarmSpec.from_describe(_alarm())
    # When evaluated at 150 s (period [120, 180) in progress)  Then only the complete period counts
    assert alarm_values(spec, store, 150.0) == [5.0]
    # When evaluated at 180 s  Then the breaching period is complete
    assert alarm_values(spec, store, 180.0) == [500.0]


def test_a_p99_alarm_reads_the_extended_statistic() -> None:
    store = _Store({"Latency": [Datum.of(10.0 + i / 100, float(v)) for i, v in enumerate(range(1, 101))]})
    spec = AlarmSpec.from_describe(_alarm(Statistic=None, ExtendedStatistic="p99", Threshold=98.5))
    values = alarm_values(spec, store, 61.0)
    assert values == [99.0]
    assert evaluate_datapoints(values, threshold=98.5, comparison_operator="GreaterThanThreshold").state == ALARM


def test_moto_initial_ok_counts_as_insufficient_data() -> None:
    assert AlarmSpec.from_describe(_alarm()).state == INSUFFICIENT_DATA
    assert AlarmSpec.from_describe(_alarm(StateReason="Threshold Crossed")).state == OK


# -- metric math --------------------------------------------------------------------------------


def _error_rate_alarm() -> dict[str, Any]:
    def stat(name: str) -> dict[str, Any]:
        metric = {"Namespace": "Sluice", "MetricName": name, "Dimensions": [{"Name": "Variant", "Value": "canary"}]}
        return {"Metric": metric, "Period": 60, "Stat": "Sum"}

    return _alarm(
        Namespace=None,
        MetricName=None,
        Statistic=None,
        Period=None,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=5.0,
        Metrics=[
            {"Id": "errors", "MetricStat": stat("Errors"), "ReturnData": False},
            {"Id": "requests", "MetricStat": stat("Requests"), "ReturnData": False},
            {"Id": "rate", "Expression": "FILL(errors, 0) / requests * 100", "Label": "Error %", "ReturnData": True},
        ],
    )


def test_error_rate_metric_math_with_fill() -> None:
    # Given three minutes of requests, errors only in the last two (none published in the first)
    store = _Store(
        {
            "Requests": [Datum.of(10.0, 100.0), Datum.of(70.0, 100.0), Datum.of(130.0, 50.0)],
            "Errors": [Datum.of(75.0, 9.0), Datum.of(135.0, 1.0)],
        }
    )
    spec = AlarmSpec.from_describe(_error_rate_alarm())
    # When evaluated after the third minute
    values = alarm_values(spec, store, 181.0)
    # Then the missing errors count as 0, the rates are 0%, 9%, 2%: 1 of 3 breach → OK (M is 2)
    assert values == [0.0, 9.0, 2.0]
    decision = evaluate_datapoints(
        values, threshold=5.0, comparison_operator="GreaterThanThreshold", datapoints_to_alarm=2
    )
    assert decision.state == OK


def test_metric_math_without_fill_leaves_gaps_missing() -> None:
    series = {"e": [None, 5.0, 1.0], "r": [10.0, 0.0, 4.0]}
    assert evaluate_expression("e / r * 100", series.__getitem__, 3) == [None, None, 25.0]
    assert evaluate_expression("FILL(e, 0) / r * 100", series.__getitem__, 3) == [0.0, None, 25.0]
    assert evaluate_expression("-(e + 1) * 2 - r / 2", series.__getitem__, 3) == [None, -12.0, -6.0]
    assert evaluate_expression("100", series.__getitem__, 2) == [100.0, 100.0]


@pytest.mark.parametrize("expression", ["e +", "RATE(e)", "e % 2", "FILL(e, r)", "(e"])
def test_unsupported_or_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression(expression, {"e": [1.0], "r": [1.0]}.__getitem__, 1)
