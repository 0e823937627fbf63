"""Deploys a template into the embedded cloud: every resource in dependency order, through moto's APIs.

Each resource is classified first (:func:`classify`):

* **emulated** -- a creator in :mod:`local.template.resources` makes it; its physical id and attributes are
  recorded for later ``Ref`` / ``Fn::GetAtt``;
* **skipped** -- ``AWS::CDK::Metadata`` and CDK's bucket-notification helper function
  (``BucketNotificationsHandler...``), whose work ``Custom::S3BucketNotifications`` does directly;
* **not emulated** -- every other type. It is recorded with a placeholder physical id (references
  to it resolve to placeholder strings instead of failing), listed on startup and in
  ``deployment.json``. That is a report, not an error.

There is no update, delete or rollback: a failed creation raises :class:`StackDeploymentError` and the
embedded cloud is started afresh next time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.exceptions import LocalCloudError, StackDeploymentError, UnresolvableReferenceError
from local.services.apigateway import ApiRegistry
from local.services.event_sources import EventSourceMappingSpec
from local.services.lambdas import LambdaRuntime
from local.template import (
    identity_resources,  # noqa: F401 - registers the Cognito creators
    serving_resources,  # noqa: F401 - registers the API Gateway and SageMaker hosting creators
)
from local.template.model import DeployedState, Resolver, Resource, Template
from local.template.naming import physical_name
from local.template.resources import CREATORS, DeployContext

logger = logging.getLogger(__name__)

SKIPPED_TYPES = frozenset({"AWS::CDK::Metadata"})
NOTIFICATION_HELPER_PREFIX = "BucketNotificationsHandler"


class Treatment(StrEnum):
    EMULATED = "emulated"
    SKIPPED = "skipped"
    NOT_EMULATED = "not emulated"


def classify(resource: Resource) -> Treatment:
    """How the embedded cloud treats a resource."""
    if resource.type in SKIPPED_TYPES:
        return Treatment.SKIPPED
    if resource.type == "AWS::Lambda::Function" and resource.logical_id.startswith(NOTIFICATION_HELPER_PREFIX):
        return Treatment.SKIPPED
    if resource.type in CREATORS:
        return Treatment.EMULATED
    return Treatment.NOT_EMULATED


@dataclass(frozen=True, kw_only=True)
class DeployedResource:
    """One line of ``deployment.json``."""

    logical_id: str
    type: str
    physical_id: str
    treatment: Treatment
    note: str = ""

    @property
    def emulated(self) -> bool:
        return self.treatment is Treatment.EMULATED


@dataclass(kw_only=True)
class Deployment:
    """What a deployment made, and the stack's resolved outputs."""

    stack_name: str
    resources: list[DeployedResource] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    event_source_mappings: list[EventSourceMappingSpec] = field(default_factory=list)
    apis: ApiRegistry = field(default_factory=ApiRegistry)
    original_outputs: dict[str, str] = field(default_factory=dict)
    """Outputs rewritten for local use (execute-api URLs → the local API front), as the template resolved them."""

    @property
    def not_emulated_types(self) -> list[str]:
        return sorted({r.type for r in self.resources if r.treatment is Treatment.NOT_EMULATED})

    def physical_id(self, logical_id: str) -> str:
        for resource in self.resources:
            if resource.logical_id == logical_id:
                return resource.physical_id
        raise KeyError(logical_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "stackName": self.stack_name,
            "notEmulatedTypes": self.not_emulated_types,
            "resources": [
                {
                    "logicalId": r.logical_id,
                    "type": r.type,
                    "physicalId": r.physical_id,
                    "emulated": r.emulated,
                    "treatment": str(r.treatment),
                    **({"note": r.note} if r.note else {}),
                }
                for r in self.resources
            ],
            "outputs": self.outputs,
            **({"originalOutputs": self.original_outputs} if self.original_outputs else {}),
        }

    def write(self, path: Path) -> None:
        _write_json(path, self.to_json())


def _write_json(path: Path, document: Any) -> None:
    """Write atomically: readers polling for the file never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2, default=str) + "\n")
    partial.replace(path)


def write_outputs_file(path: Path, deployment: Deployment) -> None:
    """``{"<StackName>": {"<OutputKey>": "<value>"}}``, the shape of ``cdk deploy --outputs-file``."""
    _write_json(path, {deployment.stack_name: deployment.outputs})


class Deployer:
    """Creates a template's resources through boto3 clients pointed at the moto server."""

    def __init__(
        self,
        template: Template,
        *,
        client: Callable[[str], Any],
        lambdas: LambdaRuntime,
        asset_root: Path,
        state_dir: Path,
    ) -> None:
        self.template = template
        self.state = DeployedState()
        self._context = DeployContext(
            template=template, client=client, lambdas=lambdas, asset_root=asset_root, state_dir=state_dir
        )

    def plan(self) -> list[tuple[Resource, Treatment]]:
        """Every active resource in creation order, with how it will be treated (no API calls)."""
        return [(resource, classify(resource)) for resource in self.template.deployment_order()]

    def deploy(self) -> Deployment:
        deployment = Deployment(stack_name=self.template.stack_name)
        resolver = self.template.resolver(self.state)
        for resource, treatment in self.plan():
            if treatment is not Treatment.EMULATED:
                placeholder = physical_name(self.template.stack_name, resource.logical_id)
                self.state.record_placeholder(resource.logical_id, placeholder)
                deployment.resources.append(
                    DeployedResource(
                        logical_id=resource.logical_id,
                        type=resource.type,
                        physical_id=placeholder,
                        treatment=treatment,
                    )
                )
                continue
            try:
                properties = resolver.resolve(dict(resource.properties))
                created = CREATORS[resource.type](self._context, resource, properties)
            except (ClientError, BotoCoreError, KeyError, LocalCloudError) as exc:
                raise StackDeploymentError(f"creating {resource.logical_id} ({resource.type}) failed: {exc}") from exc
            self.state.record(resource.logical_id, created.physical_id, created.attributes)
            deployment.resources.append(
                DeployedResource(
                    logical_id=resource.logical_id,
                    type=resource.type,
                    physical_id=created.physical_id,
                    treatment=treatment,
                    note=created.note,
                )
            )
            logger.debug("created %s %s → %s", resource.type, resource.logical_id, created.physical_id)
        for step in self._context.after_deployment:
            step()
        deployment.outputs = self._outputs(resolver)
        deployment.event_source_mappings = list(self._context.event_source_mappings)
        deployment.apis = self._context.apis
        return deployment

    def _outputs(self, resolver: Resolver) -> dict[str, str]:
        outputs: dict[str, str] = {}
        for output in self.template.outputs.values():
            if output.condition and not self.template.condition_holds(output.condition):
                continue
            try:
                value = resolver.resolve(output.value)
            except UnresolvableReferenceError as exc:
                raise StackDeploymentError(f"output {output.key}: {exc}") from exc
            outputs[output.key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        return outputs
