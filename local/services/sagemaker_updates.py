"""``UpdateEndpoint`` for moto's SageMaker, which does not implement it (moto 5.2.5: ``NotImplementedError``),
and endpoint-config instance types as AWS takes them.

A heavy use case's promotion moves its endpoint from one endpoint config to the next
(:class:`shared.promotion.targets.EndpointTarget`); without this the embedded cloud could not run it.
As on AWS: the endpoint and the new config must exist (else ``ValidationError``), the endpoint takes the
config's production variants (weights from ``InitialVariantWeight``, so a later
``UpdateEndpointWeightsAndCapacities`` -- which moto implements -- starts from them), and keeps its name
and ARN. Not emulated: the ``Updating`` status and its minutes (moto records every endpoint
``InService``; the endpoint server loads the new variants' models in the background right away, so
they serve warm, as they do once InService on AWS), ``RetainAllVariantProperties``, deployment guardrails
(blue/green, rolling), and ``ShadowProductionVariants`` (moto's ``CreateEndpointConfig`` drops them).

moto also checks an endpoint config's instance types against a list that predates the ``ml.g5`` family
(the heavy use cases' default); any ``ml.<family>.<size>`` is taken here, as AWS takes every type it offers
(whether a region offers one, and the account's quota, are not emulated).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


class EndpointUpdatePatch:
    """Install / uninstall ``UpdateEndpoint`` and the instance-type check on moto's SageMaker (process-global)."""

    def __init__(self, on_update: Callable[[str], None] | None = None) -> None:
        self._installed = False
        self._validate_instance_type: Any = None
        self._on_update = on_update
        """Called with the endpoint's name after each update (the endpoint server warms the new variants)."""

    def install(self) -> None:
        if self._installed:
            return
        from moto.core.responses import ActionResult
        from moto.core.utils import utcnow
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import FakeEndpointConfig, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        patch = self

        def update_endpoint(backend: Any, endpoint_name: str, endpoint_config_name: str) -> str:
            endpoint = backend.endpoints.get(endpoint_name)
            if endpoint is None:
                raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
            config = backend.endpoint_configs.get(endpoint_config_name)
            if config is None:
                raise ValidationError(message=f"Could not find endpoint configuration '{endpoint_config_name}'.")
            endpoint.endpoint_config_name = endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            endpoint.last_modified_time = utcnow()
            if patch._on_update is not None:
                patch._on_update(endpoint_name)
            return str(endpoint.arn)

        def respond(response: Any) -> Any:
            arn = response.sagemaker_backend.update_endpoint(
                endpoint_name=response._get_param("EndpointName"),
                endpoint_config_name=response._get_param("EndpointConfigName"),
            )
            return ActionResult({"EndpointArn": arn})

        def validate_instance_type(_config: Any, instance_type: str) -> None:
            if not INSTANCE_TYPE.match(instance_type or ""):
                raise ValidationError(message=f"Value '{instance_type}' at 'instanceType' is not an instance type")

        self._validate_instance_type = FakeEndpointConfig.validate_instance_type
        setattr(SageMakerModelBackend, "update_endpoint", update_endpoint)  # noqa: B010 - a patch, undone on uninstall
        setattr(SageMakerResponse, "update_endpoint", respond)  # noqa: B010
        setattr(FakeEndpointConfig, "validate_instance_type", validate_instance_type)  # noqa: B010
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        from moto.sagemaker.models import FakeEndpointConfig, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        for owner in (SageMakerModelBackend, SageMakerResponse):
            if "update_endpoint" in vars(owner):
                delattr(owner, "update_endpoint")
        setattr(FakeEndpointConfig, "validate_instance_type", self._validate_instance_type)  # noqa: B010
        self._installed = False
