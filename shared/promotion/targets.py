"""Where a stage transition takes effect: the deployment state (light models), or also a SageMaker endpoint.

The same transitions (:mod:`shared.promotion.transitions`) drive both. :class:`LightTarget` writes the
deployment state the score function reads (conditionally on its revision). :class:`EndpointTarget`
writes that state too — it stays the record of what serves — and then shapes the heavy model's
endpoint as :mod:`shared.promotion.variants` says (a boto3 SageMaker client).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from shared.clients import client_error_code
from shared.deployment.adapters import DeploymentStore
from shared.deployment.state import DeploymentState, ModelRef, variant_name
from shared.promotion.exceptions import EndpointBusyError, TargetError
from shared.promotion.variants import (
    VariantWeight,
    WeightsChange,
    endpoint_change,
    endpoint_config_name,
    model_name,
)

log = logging.getLogger(__name__)


class TrafficTarget(Protocol):
    def apply(
        self, before: DeploymentState, after: DeploymentState, *, updated_by: str, reason: str = ""
    ) -> DeploymentState:
        """Make ``after`` take effect (``before`` is the state it was computed from); return the state as written."""
        ...


class LightTarget:
    """The deployment state in DynamoDB: the score function serves what it says within its cache bound."""

    def __init__(self, store: DeploymentStore) -> None:
        self._store = store

    def apply(
        self, before: DeploymentState, after: DeploymentState, *, updated_by: str, reason: str = ""
    ) -> DeploymentState:
        return self._store.put(after, expected_revision=before.revision, updated_by=updated_by, reason=reason)


def _is_busy(exc: Exception) -> bool:
    """SageMaker refuses a change to an endpoint that is updating with a ``ValidationException``; no error code of
    its own says so, only the message (``Endpoint ... is in Updating status``, ``... in-progress endpoint``)."""
    message = str(exc)
    updating = "Updating" in message or "in progress" in message.lower()
    return client_error_code(exc) == "ValidationException" and updating


class EndpointTarget:
    """A heavy use case's SageMaker endpoint, after the deployment state (a boto3 SageMaker client)."""

    def __init__(
        self,
        client: Any,
        *,
        endpoint_name: str,
        instance_type: str,
        execution_role_arn: str,
        state: TrafficTarget,
        initial_instance_count: int = 1,
    ) -> None:
        self._client = client
        self._endpoint = endpoint_name
        self._instance_type = instance_type
        self._role = execution_role_arn
        self._state = state
        self._instances = initial_instance_count

    def apply(
        self, before: DeploymentState, after: DeploymentState, *, updated_by: str, reason: str = ""
    ) -> DeploymentState:
        written = self._state.apply(before, after, updated_by=updated_by, reason=reason)
        self._shape_endpoint(before, after, revision=written.revision)
        return written

    # --- the endpoint -------------------------------------------------------------------------
    def _shape_endpoint(self, before: DeploymentState, after: DeploymentState, *, revision: int) -> None:
        change = endpoint_change(before, after, endpoint_name=self._endpoint)
        if not self._endpoint_exists():
            # no endpoint yet (the stack deploys it once a model exists, or an operator creates it): the
            # deployment state is the record, and the score function answers from the light models meanwhile
            log.warning("endpoint %s does not exist: only the deployment state changes", self._endpoint)
            return
        if isinstance(change, WeightsChange):
            self._call(
                "update_endpoint_weights_and_capacities",
                EndpointName=self._endpoint,
                DesiredWeightsAndCapacities=change.desired_weights(),
            )
            return
        production = [self._production_variant(variant) for variant in change.production]
        shadow = [self._production_variant(variant) for variant in change.shadow]
        config_name = endpoint_config_name(self._endpoint, revision)
        request: dict[str, Any] = {"EndpointConfigName": config_name, "ProductionVariants": production}
        if shadow:
            request["ShadowProductionVariants"] = shadow
        self._call("create_endpoint_config", **request)
        self._call("update_endpoint", EndpointName=self._endpoint, EndpointConfigName=config_name)

    def _endpoint_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.describe_endpoint(EndpointName=self._endpoint)
        except ClientError as exc:
            if client_error_code(exc) == "ValidationException":  # "Could not find endpoint ..."
                return False
            raise TargetError(f"describe_endpoint on {self._endpoint} failed: {exc}") from exc
        return True

    def _production_variant(self, variant: VariantWeight) -> dict[str, Any]:
        self._ensure_model(variant.ref)
        return {
            "VariantName": variant_name(variant.ref),
            "ModelName": model_name(self._endpoint, variant.ref),
            "InstanceType": self._instance_type,
            "InitialInstanceCount": self._instances,
            "InitialVariantWeight": variant.weight,
        }

    def _ensure_model(self, ref: ModelRef) -> None:
        from botocore.exceptions import ClientError

        name = model_name(self._endpoint, ref)
        try:
            self._client.describe_model(ModelName=name)
        except ClientError:
            self._create_model(name, ref)  # not there yet: create it from the model package

    def _create_model(self, name: str, ref: ModelRef) -> None:
        self._call(
            "create_model",
            ModelName=name,
            ExecutionRoleArn=self._role,
            Containers=[{"ModelPackageName": ref.package_arn}],
        )

    def _call(self, operation: str, **request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, operation)(**request)
        except ClientError as exc:
            if _is_busy(exc):
                raise EndpointBusyError(f"{self._endpoint} is updating; {operation} must wait: {exc}") from exc
            raise TargetError(f"{operation} on {self._endpoint} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TargetError(f"{operation} on {self._endpoint} failed: {exc}") from exc
