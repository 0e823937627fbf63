"""The environments of the review functions (intake, sweep, the reviewer's API): one pydantic model each."""

from __future__ import annotations

from pydantic import Field

from shared.environment import FunctionEnvironment, LakeEnvironment, RegistryEnvironment, UseCaseEnvironment


class ReviewTableEnvironment(FunctionEnvironment):
    """A function that reads or writes the review items (:data:`shared.review.adapters.TABLE_SCHEMA`)."""

    review_table: str = Field(min_length=3, alias="REVIEW_TABLE")


class ReviewEnvironment(UseCaseEnvironment, LakeEnvironment, ReviewTableEnvironment):
    """The review intake and sweep functions: the use case, the lake (feedback labels, the monitor's latest
    report) and the review table."""


class ReviewApiEnvironment(ReviewEnvironment, RegistryEnvironment):
    """The reviewer's API: also the user pool's app client, whose id the page's sign-in form sends to Cognito, and
    the model package group (a served version's ``metrics.json``: what drove a linear model's score)."""

    user_pool_client_id: str = Field(min_length=1, alias="REVIEW_USER_POOL_CLIENT_ID")
