"""A heavy promotion's endpoint changes against moto's SageMaker API, with the embedded cloud's UpdateEndpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.services.sagemaker_updates import EndpointUpdatePatch
from shared.promotion.targets import EndpointTarget
from shared.promotion.transitions import promote, set_canary_weight, start, start_shadow
from shared.promotion.variants import model_name
from tests.unit.promotion_fixtures import T0, ref, serving
from tests.unit.test_promotion_targets import RecordingState

ENDPOINT = "sluice-telco-churn-heavy"
INSTANCE = "ml.g5.xlarge"  # the heavy default; moto alone refuses it (its list predates ml.g5)
ROLE = "arn:aws:iam::123456789012:role/endpoint"
STEPS = (0.1, 0.5, 1.0)


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    patch = EndpointUpdatePatch()
    with mock_aws():
        patch.install()
        try:
            client = boto3.client("sagemaker", region_name="us-east-1")
            # the stack's endpoint: the first champion under the stack's own variant name
            client.create_model(
                ModelName="stack-model",
                ExecutionRoleArn=ROLE,
                PrimaryContainer={"Image": "sklearn", "ModelDataUrl": "s3://b/m1.tar.gz"},
            )
            client.create_endpoint_config(
                EndpointConfigName="stack-config",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "stack-model",
                        "InstanceType": INSTANCE,
                        "InitialInstanceCount": 1,
                        "InitialVariantWeight": 1.0,
                    }
                ],
            )
            client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="stack-config")
            yield client
        finally:
            patch.uninstall()


def _variants(client: Any) -> dict[str, float]:
    endpoint = client.describe_endpoint(EndpointName=ENDPOINT)
    return {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]}


def test_shadow_canary_steps_and_promotion_reshape_the_endpoint(sagemaker: Any) -> None:
    # Given the endpoint target of a heavy use case
    target = EndpointTarget(
        sagemaker, endpoint_name=ENDPOINT, instance_type=INSTANCE, execution_role_arn=ROLE, state=RecordingState()
    )
    begun = start(serving(), None, ref(2), now=T0, actor="cli:ana")
    # When the candidate shadows, then takes each canary step, then is promoted
    shadow = start_shadow(begun.state, begun.promotion, now=T0, actor="promotion")
    target.apply(begun.state, shadow.state, updated_by="promotion")
    after_shadow = _variants(sagemaker)
    first = set_canary_weight(shadow.state, shadow.promotion, 0, STEPS, now=T0, actor="promotion")
    target.apply(shadow.state, first.state, updated_by="promotion")
    after_first = _variants(sagemaker)
    second = set_canary_weight(first.state, first.promotion, 1, STEPS, now=T0, actor="promotion")
    target.apply(first.state, second.state, updated_by="promotion")
    after_second = _variants(sagemaker)
    promoted = promote(second.state, second.promotion, now=T0, actor="promotion", watch_window_seconds=60)
    target.apply(second.state, promoted.state, updated_by="promotion")
    # Then the endpoint served the champion alone under its version's name, then both at the step's weights
    # (a new config for the first step, a weights update for the next), then the new champion alone
    assert after_shadow == {"v1": 1.0}
    assert after_first == {"v1": pytest.approx(0.9), "v2": pytest.approx(0.1)}
    assert after_second == {"v1": pytest.approx(0.5), "v2": pytest.approx(0.5)}
    assert _variants(sagemaker) == {"v2": 1.0}
    # And both models exist, made from their packages
    names = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert {model_name(ENDPOINT, ref(1)), model_name(ENDPOINT, ref(2))} <= names


def test_updating_to_a_config_that_does_not_exist_is_refused(sagemaker: Any) -> None:
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find endpoint configuration"):
        sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="nope")


def test_an_endpoint_config_takes_any_instance_type_of_the_ml_form_only(sagemaker: Any) -> None:
    variant = {"VariantName": "v", "ModelName": "stack-model", "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName="g6", ProductionVariants=[{**variant, "InstanceType": "ml.g6.12xlarge"}]
    )
    with pytest.raises(sagemaker.exceptions.ClientError, match="not an instance type"):
        sagemaker.create_endpoint_config(
            EndpointConfigName="bad", ProductionVariants=[{**variant, "InstanceType": "g6.large"}]
        )
