"""The review service of a function's environment: clients made at first use, never at import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.environment import read_environment
from shared.review.adapters import DynamoReviewStore, LatestAlertedSegments
from shared.review.environment import ReviewEnvironment
from shared.review.service import ReviewService
from shared.usecase.settings import load_usecase


def utc_now() -> datetime:
    return datetime.now(UTC)


def review_service(environment: ReviewEnvironment, *, client: Any) -> ReviewService:
    """``client(name)``: a boto3 client (``dynamodb``, ``s3``)."""
    from shared.lake.adapters import S3ObjectStore

    lake = S3ObjectStore(client("s3"))
    return ReviewService(
        DynamoReviewStore(client("dynamodb"), environment.review_table),
        lake,
        load_usecase(environment.usecase_path),
        bucket=environment.lake_bucket,
        clock=utc_now,
        alerted_segments=LatestAlertedSegments(lake, environment.lake_bucket),
    )


def service_from_environment(function: str, model: type[ReviewEnvironment] = ReviewEnvironment) -> ReviewService:
    import boto3

    return review_service(read_environment(model, function), client=boto3.client)
