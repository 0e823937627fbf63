"""Monitor function: one monitoring run, on its EventBridge schedule or started by ``python -m cli monitor --run``.

The event is a Scheduled Event (the run is for its ``time``) or the CLI's ``{"window_hours": [6], "now": iso}``
(both optional). Answers the run's summary (run id, report keys, violations and their sentences); the EMF
metrics go to stdout. A rerun in the same schedule slot rewrites the same report and joins nothing twice.

Environment: see :class:`shared.monitoring.environment.MonitorEnvironment`, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.monitoring.runtime import service_from_environment
from shared.monitoring.service import MonitoringService, parse_monitor_event

logger = Logger()


@lru_cache(maxsize=1)
def service() -> MonitoringService:
    return service_from_environment("monitor")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    request = parse_monitor_event(event)
    summary = service().run(request.now, windows_hours=request.windows_hours)
    logger.info("monitored", extra={"run_id": summary.run_id, "violations": summary.violations})
    return summary.to_json()
