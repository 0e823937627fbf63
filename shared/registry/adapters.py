"""The model registry on SageMaker Model Package Groups: the one adapter that talks to them (a boto3 client)."""

from __future__ import annotations

from typing import Any

from shared.registry.exceptions import RegistryError


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class SageMakerRegistry:
    """Model packages through a boto3 SageMaker client; every SDK error surfaces as :class:`RegistryError`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_model_package(self, request: dict[str, Any]) -> str:
        """Create a model package; return its ARN."""
        try:
            arn: str = self._client.create_model_package(**request)["ModelPackageArn"]
        except _client_errors() as exc:
            raise RegistryError(f"cannot create a model package in {request['ModelPackageGroupName']}: {exc}") from exc
        return arn

    def describe(self, package_arn: str) -> dict[str, Any]:
        """The ``DescribeModelPackage`` response."""
        try:
            return dict(self._client.describe_model_package(ModelPackageName=package_arn))
        except _client_errors() as exc:
            raise RegistryError(f"cannot describe model package {package_arn!r}: {exc}") from exc

    def set_approval(self, package_arn: str, *, approved: bool, reason: str) -> None:
        """``Approved`` or ``Rejected``, with ``reason`` as the ApprovalDescription (max 1024 characters)."""
        try:
            self._client.update_model_package(
                ModelPackageArn=package_arn,
                ModelApprovalStatus="Approved" if approved else "Rejected",
                ApprovalDescription=reason[:1024],
            )
        except _client_errors() as exc:
            raise RegistryError(f"cannot update the approval of {package_arn!r}: {exc}") from exc

    def packages(self, group_name: str) -> list[dict[str, Any]]:
        """The group's package summaries (``ListModelPackages``), newest first."""
        summaries: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                page = self._client.list_model_packages(
                    ModelPackageGroupName=group_name,
                    SortBy="CreationTime",
                    SortOrder="Descending",
                    **({"NextToken": token} if token else {}),
                )
                summaries += page["ModelPackageSummaryList"]
                token = page.get("NextToken")
                if not token:
                    return summaries
        except _client_errors() as exc:
            raise RegistryError(f"cannot list the model packages of {group_name}: {exc}") from exc
