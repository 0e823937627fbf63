"""Review sweep, on its schedule: items past the SLA marked overdue, labels whose write failed written again,
and the queue's operating metrics printed as EMF (:mod:`shared.review.telemetry`; the SLA alarm watches
``ReviewOldestItemAgeSeconds``).

Environment: see :class:`shared.review.environment.ReviewEnvironment`, plus powertools' own.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.review import telemetry
from shared.review.page import stats_json
from shared.review.runtime import service_from_environment
from shared.review.service import ReviewService

logger = Logger()


@lru_cache(maxsize=1)
def service() -> ReviewService:
    return service_from_environment("review-sweep")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    review = service()
    marked = review.mark_overdue()
    flushed = review.flush_feedback()
    stats = review.stats()
    sys.stdout.write("\n".join(telemetry.documents(stats)) + "\n")  # EMF: Lambda's log agent makes them metrics
    logger.info("review swept", extra={"marked_overdue": marked, "feedback_written": flushed})
    return {"marked_overdue": marked, "feedback_written": flushed, "stats": stats_json(stats)}
