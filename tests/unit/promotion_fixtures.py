"""Model refs and states shared by the promotion unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.deployment.state import DeploymentState, ModelRef

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
USECASE = "telco_churn"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:sluice-telco-churn-promotion:promote-v2"


def ref(version: int) -> ModelRef:
    return ModelRef(
        version=version,
        package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/sluice-telco-churn/{version}",
        run_id=f"run-{version}",
        onnx_key=f"models/{USECASE}/run-{version}/model.onnx",
        onnx_sha256=f"{version:064x}",
        threshold=0.3,
    )


def serving(version: int = 1) -> DeploymentState:
    return DeploymentState(usecase=USECASE, champion=ref(version), revision=4)
