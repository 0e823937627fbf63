"""EndpointTarget: the SageMaker calls each transition makes (a fake client records them)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.deployment.state import DeploymentState
from shared.promotion.exceptions import EndpointBusyError, TargetError
from shared.promotion.targets import EndpointTarget
from shared.promotion.transitions import promote, set_canary_weight, start, start_shadow
from tests.unit.promotion_fixtures import T0, ref, serving

ENDPOINT = "sluice-telco-churn"
STEPS = (0.1, 0.5, 1.0)


class FakeSageMaker:
    def __init__(self, *, busy: bool = False, endpoint_exists: bool = True) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.models: set[str] = set()
        self.busy = busy
        self.endpoint_exists = endpoint_exists

    def describe_endpoint(self, **request: Any) -> dict[str, Any]:
        if not self.endpoint_exists:
            message = {"Error": {"Code": "ValidationException", "Message": f"Could not find endpoint {request}"}}
            raise ClientError(message, "DescribeEndpoint")
        return {"EndpointStatus": "InService"}

    def describe_model(self, **request: Any) -> dict[str, Any]:
        if request["ModelName"] not in self.models:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "not found"}}, "DescribeModel")
        return {}

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            if self.busy and operation == "update_endpoint":
                message = {"Error": {"Code": "ValidationException", "Message": "Endpoint is in Updating status"}}
                raise ClientError(message, "UpdateEndpoint")
            self.calls.append((operation, request))
            if operation == "create_model":
                self.models.add(request["ModelName"])
            return {}

        return call


class RecordingState:
    def __init__(self) -> None:
        self.written: list[DeploymentState] = []

    def apply(
        self, before: DeploymentState, after: DeploymentState, *, updated_by: str, reason: str = ""
    ) -> DeploymentState:
        written = after.model_copy(update={"revision": before.revision + 1})
        self.written.append(written)
        return written


def _target(client: FakeSageMaker) -> tuple[EndpointTarget, RecordingState]:
    state = RecordingState()
    target = EndpointTarget(
        client,
        endpoint_name=ENDPOINT,
        instance_type="ml.g5.xlarge",
        execution_role_arn="arn:aws:iam::1:role/r",
        state=state,
    )
    return target, state


def test_shadow_canary_and_promotion_shape_the_endpoint() -> None:
    client = FakeSageMaker()
    target, state = _target(client)
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    # When the candidate starts shadowing
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    target.apply(begun.state, shadow.state, updated_by="promotion")
    # Then both models exist and a config with the candidate as a shadow variant is deployed
    operations = [name for name, _ in client.calls]
    assert operations == ["create_model", "create_model", "create_endpoint_config", "update_endpoint"]
    config = client.calls[2][1]
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["v1"]
    assert [v["VariantName"] for v in config["ShadowProductionVariants"]] == ["v2"]
    assert client.calls[1][1]["Containers"] == [{"ModelPackageName": ref(2).package_arn}]
    assert client.calls[3][1] == {"EndpointName": ENDPOINT, "EndpointConfigName": config["EndpointConfigName"]}
    # When the first canary step starts: a new config with both production variants
    client.calls.clear()
    first = set_canary_weight(shadow.state, shadow.promotion, 0, STEPS, now=T0, actor="promotion")
    target.apply(shadow.state, first.state, updated_by="promotion")
    config = client.calls[0][1]
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {"v1": 0.9, "v2": 0.1}
    assert "ShadowProductionVariants" not in config
    # When the weight grows: only the weights change
    client.calls.clear()
    second = set_canary_weight(first.state, first.promotion, 1, STEPS, now=T0, actor="promotion")
    target.apply(first.state, second.state, updated_by="promotion")
    assert client.calls == [
        (
            "update_endpoint_weights_and_capacities",
            {
                "EndpointName": ENDPOINT,
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "v1", "DesiredWeight": 0.5},
                    {"VariantName": "v2", "DesiredWeight": 0.5},
                ],
            },
        )
    ]
    # When promoted: the new champion alone
    client.calls.clear()
    promoted = promote(second.state, second.promotion, now=T0, actor="promotion", watch_window_seconds=60)
    target.apply(second.state, promoted.state, updated_by="promotion")
    config = client.calls[0][1]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ProductionVariants"]] == [("v2", 1.0)]
    # And the deployment state was written each time, before the endpoint
    assert [s.stage for s in state.written] == ["shadow", "canary", "canary", "watch"]


def test_an_updating_endpoint_is_a_retryable_error() -> None:
    target, _ = _target(FakeSageMaker(busy=True))
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    with pytest.raises(EndpointBusyError):
        target.apply(begun.state, shadow.state, updated_by="promotion")


def test_without_an_endpoint_only_the_deployment_state_changes() -> None:
    # Given a heavy use case whose endpoint does not exist yet
    client = FakeSageMaker(endpoint_exists=False)
    target, state = _target(client)
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    # When the candidate starts shadowing
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    target.apply(begun.state, shadow.state, updated_by="promotion")
    # Then the state is written and SageMaker is not asked to change anything
    assert [s.stage for s in state.written] == ["shadow"]
    assert client.calls == []


def test_a_validation_error_that_is_not_about_updating_is_not_retryable() -> None:
    # Given an endpoint that refuses the new config for another reason
    class RefusingSageMaker(FakeSageMaker):
        def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
            message = {"Error": {"Code": "ValidationException", "Message": "not an instance type"}}
            raise ClientError(message, "CreateEndpointConfig")

    target, _ = _target(RefusingSageMaker())
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    # When the candidate starts shadowing
    # Then the step fails with a target error the state machine does not retry
    with pytest.raises(TargetError) as raised:
        target.apply(begun.state, shadow.state, updated_by="promotion")
    assert not isinstance(raised.value, EndpointBusyError)
