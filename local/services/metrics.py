"""``GetMetricData`` with CloudWatch's statistics for the embedded cloud.

moto 5.2.5's ``get_metric_data`` (``moto/cloudwatch/models.py``) computes no percentiles: a ``p99``
query yields ``None`` values, which its serializer turns into an HTTP 500 for the whole call. It also
matches a query with dimensions on name and dimensions only (not the namespace). :class:`MetricDataPatch`
replaces the backend method so that every ``MetricStat`` query is answered as CloudWatch does:
namespace, name, the exact dimension set and ``Unit`` must match; periods run from ``StartTime`` in
steps of ``Period``; a period without data (or whose percentile cannot be computed: no raw values,
or a negative one) is left out rather than returned as a value. The statistics are those of the alarm
evaluator (:func:`local.services.alarms.aggregate`: ``SampleCount``, ``Sum``, ``Average``, ``Minimum``,
``Maximum``, ``pNN``), read from the same raw datapoints (:class:`local.services.alarms.MotoMetricSource`).
Metric-math expressions are still evaluated by moto, on top of these results. Metrics Insights
(``SELECT``) queries are not emulated here either (moto ignores them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.services.alarms import AlarmEvaluationError, MetricQuery, MotoMetricSource, aggregate


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def metric_stat_result(
    query: dict[str, Any], source: MotoMetricSource, start: datetime, end: datetime
) -> dict[str, Any]:
    """One ``MetricStat`` query's result in moto's shape (``id``, ``label``, ``values``, ``timestamps``)."""
    stat = query["MetricStat"]
    metric_query = MetricQuery.from_metric_stat(stat)
    period = timedelta(seconds=int(stat["Period"]))
    values: list[float] = []
    timestamps: list[datetime] = []
    period_start = _aware(start)
    end = _aware(end)
    while period_start < end:
        data = source.datapoints(metric_query, period_start.timestamp(), (period_start + period).timestamp())
        try:
            value = aggregate(metric_query.statistic, data)
        except AlarmEvaluationError:
            value = None  # a statistic this emulation does not compute: no datapoint rather than a wrong one
        if value is not None:
            values.append(value)
            timestamps.append(period_start)
        period_start += period
    label = query.get("Label") or f"{metric_query.metric_name} {metric_query.statistic}"
    return {"id": query["Id"], "label": label, "values": values, "timestamps": timestamps, "status_code": "Complete"}


class MetricDataPatch:
    """Replaces ``CloudWatchBackend.get_metric_data`` while installed (one embedded cloud per process)."""

    def __init__(self, *, account_id: str, region: str) -> None:
        self._source = MotoMetricSource(account_id=account_id, region=region)
        self._original: Any = None

    def install(self) -> None:
        from moto.cloudwatch import models

        if self._original is not None:
            return
        self._original = models.CloudWatchBackend.get_metric_data
        source = self._source

        def get_metric_data(
            backend: Any,
            queries: list[dict[str, Any]],
            start_time: datetime,
            end_time: datetime,
            scan_by: str = "TimestampAscending",
        ) -> list[dict[str, Any]]:
            if start_time >= end_time:
                raise models.ValidationError("The parameter EndTime must be greater than StartTime.")
            del backend
            results: list[dict[str, Any]] = []
            returned: list[dict[str, Any]] = []
            for query in (q for q in queries if "MetricStat" in q):
                result = metric_stat_result(query, source, start_time, end_time)
                if scan_by == "TimestampDescending":
                    result["values"].reverse()
                    result["timestamps"].reverse()
                results.append(result)
                if query.get("ReturnData", True):
                    returned.append(result)
            for query in queries:
                expression = str(query.get("Expression", ""))
                if expression and not expression.startswith("SELECT"):
                    values, timestamps = models.parse_expression(expression, results)
                    returned.append(
                        {
                            "id": query["Id"],
                            "label": query.get("Label") or query["Id"],
                            "values": values,
                            "timestamps": timestamps,
                            "status_code": "Complete",
                        }
                    )
            return returned

        models.CloudWatchBackend.get_metric_data = get_metric_data  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is None:
            return
        from moto.cloudwatch import models

        models.CloudWatchBackend.get_metric_data = self._original  # type: ignore[method-assign]
        self._original = None
