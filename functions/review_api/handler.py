"""The reviewer's API (API Gateway REST, Cognito user pool authorizer) → :class:`shared.review.api.ReviewApi`.

Routes under ``/v1/{usecase}/review``: the page, ``login`` (the sign-in form), ``items``, ``items/{id}``,
``items/{id}/claim``, ``items/{id}/decision``, ``stats`` (see :mod:`shared.review.api`). The reviewer is the
authorizer's ``cognito:username`` claim.

Environment: see :class:`shared.review.environment.ReviewApiEnvironment`, plus powertools' own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.environment import read_environment
from shared.review.adapters import RegistryExplanations
from shared.review.api import Answer, ReviewApi, error_answer, reviewer_of
from shared.review.environment import ReviewApiEnvironment
from shared.review.exceptions import ReviewError
from shared.review.runtime import review_service, utc_now
from shared.usecase.settings import load_usecase

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver()
REVIEW = "/v1/<usecase>/review"


@lru_cache(maxsize=1)
def environment() -> ReviewApiEnvironment:
    return read_environment(ReviewApiEnvironment, "review-api")


@lru_cache(maxsize=1)
def api() -> ReviewApi:
    import boto3

    from shared.lake.adapters import S3ObjectStore
    from shared.registry.adapters import SageMakerRegistry

    env = environment()
    explanations = RegistryExplanations(
        SageMakerRegistry(boto3.client("sagemaker")), S3ObjectStore(boto3.client("s3")), env.model_package_group
    )
    return ReviewApi(
        review_service(env, client=boto3.client),
        load_usecase(env.usecase_path),
        clock=utc_now,
        contributions=explanations,
    )


@lru_cache(maxsize=1)
def cognito_url() -> str:
    """Where the page's sign-in form reaches Cognito: the endpoint this function's own client uses."""
    import boto3

    return str(boto3.client("cognito-idp").meta.endpoint_url).rstrip("/") + "/"


def _respond(answer: Answer) -> Response[str]:
    return Response(status_code=answer.status, content_type=answer.content_type, body=answer.body)


def _reviewer() -> str:
    return reviewer_of(app.current_event.request_context.authorizer.claims)


def _base(usecase: str) -> str:
    return f"/{app.current_event.request_context.stage}/v1/{usecase}/review"


@app.get(f"{REVIEW}/login")
def login(usecase: str) -> Response[str]:
    return _respond(
        api().login(base=_base(usecase), cognito_url=cognito_url(), client_id=environment().user_pool_client_id)
    )


@app.get(REVIEW)
def review_page(usecase: str) -> Response[str]:
    item = app.current_event.get_query_string_value("item")
    return _respond(api().page(base=_base(usecase), reviewer=_reviewer(), item_id=item))


@app.get(f"{REVIEW}/items")
def items(usecase: str) -> Response[str]:  # noqa: ARG001 - the route's parameter; the function serves one use case
    return _respond(api().items(reviewer=_reviewer()))


@app.get(f"{REVIEW}/items/<item_id>")
def item(usecase: str, item_id: str) -> Response[str]:  # noqa: ARG001 - as above
    _reviewer()
    return _respond(api().item(item_id))


@app.post(f"{REVIEW}/items/<item_id>/claim")
def claim(usecase: str, item_id: str) -> Response[str]:  # noqa: ARG001 - as above
    return _respond(api().claim(item_id, reviewer=_reviewer()))


@app.post(f"{REVIEW}/items/<item_id>/decision")
def decision(usecase: str, item_id: str) -> Response[str]:  # noqa: ARG001 - as above
    return _respond(api().decide(item_id, reviewer=_reviewer(), body=app.current_event.body))


@app.get(f"{REVIEW}/stats")
def stats(usecase: str) -> Response[str]:  # noqa: ARG001 - as above
    _reviewer()
    return _respond(api().stats())


@app.exception_handler(ReviewError)
def review_error(exc: ReviewError) -> Response[str]:
    if exc.status >= 500:
        logger.exception("review request failed")
    return _respond(error_answer(exc))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
