"""Every service emulation of the embedded cloud behind one lifecycle, and the one ordered registry of them.

An :class:`Emulation` goes through four steps, which :class:`local.cloud.EmbeddedCloud` drives for every
entry of :data:`EMULATIONS`:

1. :meth:`~Emulation.install`, in registry order, before the stack is deployed: patch moto (and start
   what must already run while the template deploys, such as the Lambda runtime's async worker);
2. :meth:`~Emulation.start`, in registry order, once the stack is deployed: start the background work
   that needs the deployed stack (the API Gateway front, the SQS pollers, the alarm and schedule clocks);
3. :meth:`~Emulation.stop`, in reverse order: stop background work, letting what runs finish;
4. :meth:`~Emulation.uninstall`, in reverse order: put moto's originals back.

Stopping everything before uninstalling anything means no patch is removed while work that relies on it
still drains (an async invocation that puts an event still finds EventBridge routed to Lambda). Each step
is idempotent, and safe on an emulation that never got past an earlier one (a failed start stops too).

Each entry of :data:`EMULATIONS` builds its emulation from :class:`Services`: the cloud's :class:`Site`
and the emulations built before it, which it also records there under a typed name (``services.lambdas``,
``services.events``, ...) for the cloud to expose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from local.exceptions import LocalCloudError
from local.services.alarms import AlarmEvaluator
from local.services.apigateway import ApiFront, ApiGateway, ApiRegistry, ControlRoute
from local.services.cognito import CognitoTokens
from local.services.emf import EmfPublisher
from local.services.event_sources import EventSourceMappingSpec, SqsPoller
from local.services.events import EventRouter
from local.services.lambdas import LambdaRuntime
from local.services.metrics import MetricDataPatch
from local.services.object_faults import ObjectFaults
from local.services.sagemaker import TrainingRunner
from local.services.sagemaker_endpoints import EndpointServer
from local.services.sagemaker_registry import ModelRegistryPatches
from local.services.sagemaker_updates import EndpointUpdatePatch
from local.services.schedules import Scheduler
from local.services.stepfunctions import StepFunctionsPatches


class DeployedStack(Protocol):
    """What the emulations need of a deployed stack (:class:`local.template.deployer.Deployment` has it)."""

    @property
    def apis(self) -> ApiRegistry: ...

    @property
    def event_source_mappings(self) -> Sequence[EventSourceMappingSpec]: ...


class Emulation(Protocol):
    """One emulated capability, as the embedded cloud drives it (see the module docstring)."""

    def install(self) -> None:
        """Patch moto; before the stack is deployed."""

    def start(self, stack: DeployedStack) -> None:
        """Start the background work that serves the deployed ``stack``."""

    def stop(self, drain_timeout_s: float) -> None:
        """Stop background work; what runs gets up to ``drain_timeout_s`` to finish."""

    def uninstall(self) -> None:
        """Put moto's originals back."""


@dataclass(frozen=True, kw_only=True)
class Site:
    """Where the emulations run and how: the moto server's address, the cloud's settings."""

    endpoint_url: str
    region: str
    account_id: str
    state_dir: Path
    project_root: Path
    usecase_file: Path | None
    client: Callable[[str], Any]
    """A boto3 client for a service, pointed at the moto server."""
    retry_backoff_s: float
    tick_s: float | None
    """How often alarms are evaluated and schedules checked; None: never by a thread."""
    api_port: int
    """The API Gateway front's port on 127.0.0.1 (0: a free one)."""


class Services:
    """The emulations of one embedded cloud, in the order they were built, and typed handles on them."""

    lambdas: LambdaRuntime
    events: EventRouter
    emf: EmfPublisher
    training: TrainingRunner
    endpoints: EndpointServer
    object_faults: ObjectFaults
    api: ApiFrontEmulation
    event_sources: SqsEmulation
    alarms: AlarmEvaluator
    scheduler: Scheduler

    def __init__(self, site: Site) -> None:
        self.site = site
        self.emulations: list[Emulation] = []

    def build(self) -> list[Emulation]:
        """Build every emulation of :data:`EMULATIONS`, in order (none installed yet)."""
        for build in EMULATIONS:
            self.emulations.append(build(self))
        return self.emulations


# -- the shapes of emulation ---------------------------------------------------------------------


class MotoPatch(Protocol):
    def install(self) -> None: ...

    def uninstall(self) -> None: ...


@dataclass
class PatchEmulation:
    """An emulation that only patches moto: nothing runs in the background."""

    patch: MotoPatch

    def install(self) -> None:
        self.patch.install()

    def start(self, stack: DeployedStack) -> None:
        del stack

    def stop(self, drain_timeout_s: float) -> None:
        del drain_timeout_s

    def uninstall(self) -> None:
        self.patch.uninstall()


class Clock(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> None: ...


@dataclass
class ClockEmulation:
    """An emulation that ticks in a thread once the stack is deployed (when the site ticks at all)."""

    clock: Clock
    ticking: bool

    def install(self) -> None:
        return None

    def start(self, stack: DeployedStack) -> None:
        del stack
        if self.ticking:
            self.clock.start()

    def stop(self, drain_timeout_s: float) -> None:
        del drain_timeout_s
        self.clock.stop()

    def uninstall(self) -> None:
        return None


@dataclass
class LambdaEmulation:
    """The in-process Lambda runtime: its patches and its async worker, both from before deployment."""

    runtime: LambdaRuntime

    def install(self) -> None:
        self.runtime.install()
        self.runtime.start()

    def start(self, stack: DeployedStack) -> None:
        del stack

    def stop(self, drain_timeout_s: float) -> None:
        self.runtime.stop(drain_timeout_s=drain_timeout_s)

    def uninstall(self) -> None:
        self.runtime.uninstall()


@dataclass
class EmfEmulation:
    """Handler output → EMF → CloudWatch metrics: the publisher becomes the Lambda runtime's output sink."""

    publisher: EmfPublisher
    runtime: LambdaRuntime

    def install(self) -> None:
        self.runtime.output_sink = self.publisher.publish_output

    def start(self, stack: DeployedStack) -> None:
        del stack

    def stop(self, drain_timeout_s: float) -> None:
        del drain_timeout_s

    def uninstall(self) -> None:
        return None


@dataclass
class TrainingEmulation:
    """SageMaker training jobs run in subprocesses: moto patched, running jobs ended on stop."""

    runner: TrainingRunner

    def install(self) -> None:
        self.runner.install()

    def start(self, stack: DeployedStack) -> None:
        del stack

    def stop(self, drain_timeout_s: float) -> None:
        self.runner.stop(timeout_s=drain_timeout_s)

    def uninstall(self) -> None:
        self.runner.uninstall()


class ApiFrontEmulation:
    """The HTTP front of the stack's REST APIs (and the ``/_sluice/`` controls), started once they are deployed."""

    def __init__(
        self, *, lambdas: LambdaRuntime, controls: Sequence[ControlRoute], port: int, tokens: CognitoTokens
    ) -> None:
        self._lambdas = lambdas
        self._controls = list(controls)
        self._port = port
        self._tokens = tokens
        self._front: ApiFront | None = None

    @property
    def front(self) -> ApiFront:
        if self._front is None:
            raise LocalCloudError("the API Gateway front is not running")
        return self._front

    def install(self) -> None:
        return None

    def start(self, stack: DeployedStack) -> None:
        if self._front is not None:
            return
        lambdas = self._lambdas

        def invoke(function_arn: str, event: Mapping[str, Any]) -> tuple[bool, bytes]:
            result = lambdas.invoke(function_arn, event)
            return result.function_error, result.payload

        gateway = ApiGateway(stack.apis, invoke, token_claims=self._tokens.claims)
        gateway.controls.extend(self._controls)
        front = ApiFront(gateway, port=self._port)
        front.start()
        self._front = front

    def stop(self, drain_timeout_s: float) -> None:
        del drain_timeout_s
        if self._front is not None:
            self._front.stop()
            self._front = None

    def uninstall(self) -> None:
        return None


class SqsEmulation:
    """The pollers of the stack's SQS event source mappings, started once those are deployed."""

    def __init__(self, *, lambdas: LambdaRuntime, client: Callable[[str], Any], region: str) -> None:
        self._lambdas = lambdas
        self._client = client
        self._region = region
        self._poller: SqsPoller | None = None

    @property
    def poller(self) -> SqsPoller:
        if self._poller is None:
            raise LocalCloudError("the SQS event sources are not polled")
        return self._poller

    def install(self) -> None:
        return None

    def start(self, stack: DeployedStack) -> None:
        if self._poller is not None:
            return
        self._poller = SqsPoller(
            mappings=stack.event_source_mappings, lambdas=self._lambdas, client=self._client, region=self._region
        )
        self._poller.start()

    def stop(self, drain_timeout_s: float) -> None:
        if self._poller is not None:
            self._poller.stop(timeout_s=drain_timeout_s)
            self._poller = None

    def uninstall(self) -> None:
        return None


# -- the registry --------------------------------------------------------------------------------


def _lambda_runtime(services: Services) -> Emulation:
    site = services.site
    services.lambdas = LambdaRuntime(
        endpoint_url=site.endpoint_url,
        region=site.region,
        project_root=site.project_root,
        retry_backoff_s=site.retry_backoff_s,
        code_root=site.state_dir / "lambda-code",
    )
    return LambdaEmulation(services.lambdas)


def _event_router(services: Services) -> Emulation:
    site = services.site
    services.events = EventRouter(services.lambdas, site.client, region=site.region, account_id=site.account_id)
    return PatchEmulation(services.events)


def _emf(services: Services) -> Emulation:
    services.emf = EmfPublisher(services.site.client)
    return EmfEmulation(services.emf, services.lambdas)


def _training(services: Services) -> Emulation:
    site = services.site
    services.training = TrainingRunner(
        endpoint_url=site.endpoint_url, region=site.region, state_dir=site.state_dir, client=site.client
    )
    return TrainingEmulation(services.training)


def _endpoints(services: Services) -> Emulation:
    site = services.site
    services.endpoints = EndpointServer(
        client=site.client,
        state_dir=site.state_dir,
        project_root=site.project_root,
        usecase_file=site.usecase_file,
        account_id=site.account_id,
        region=site.region,
    )
    return PatchEmulation(services.endpoints)


def _object_faults(services: Services) -> Emulation:
    services.object_faults = ObjectFaults()
    return PatchEmulation(services.object_faults)


def _step_functions(_services: Services) -> Emulation:
    return PatchEmulation(StepFunctionsPatches())


def _model_registry(_services: Services) -> Emulation:
    return PatchEmulation(ModelRegistryPatches())


def _endpoint_updates(services: Services) -> Emulation:
    return PatchEmulation(EndpointUpdatePatch(on_update=services.endpoints.warm))


def _metric_data(services: Services) -> Emulation:
    return PatchEmulation(MetricDataPatch(account_id=services.site.account_id, region=services.site.region))


def _api_front(services: Services) -> Emulation:
    services.api = ApiFrontEmulation(
        lambdas=services.lambdas,
        controls=(services.endpoints.control, services.object_faults.control),
        port=services.site.api_port,
        tokens=CognitoTokens(endpoint_url=services.site.endpoint_url, client=services.site.client),
    )
    return services.api


def _sqs_event_sources(services: Services) -> Emulation:
    site = services.site
    services.event_sources = SqsEmulation(lambdas=services.lambdas, client=site.client, region=site.region)
    return services.event_sources


def _alarms(services: Services) -> Emulation:
    site = services.site
    services.alarms = AlarmEvaluator(
        site.client,
        region=site.region,
        account_id=site.account_id,
        tick_seconds=site.tick_s or 1.0,
        events=services.events,
        lambda_invoke_async=services.lambdas.invoke_async,
    )
    return ClockEmulation(services.alarms, ticking=site.tick_s is not None)


def _schedules(services: Services) -> Emulation:
    site = services.site
    services.scheduler = Scheduler(site.client, services.events, tick_seconds=site.tick_s or 1.0)
    return ClockEmulation(services.scheduler, ticking=site.tick_s is not None)


EMULATIONS: tuple[Callable[[Services], Emulation], ...] = (
    _lambda_runtime,  # first: the others invoke functions through it
    _event_router,  # EventBridge rules → Lambda, SNS, Step Functions targets
    _emf,  # handler output → CloudWatch metrics
    _training,  # SageMaker training jobs in subprocesses
    _endpoints,  # SageMaker endpoints served in-process
    _object_faults,  # local-only read faults on S3 objects (/_sluice/faults/objects)
    _step_functions,  # fixes to moto's Step Functions interpreter
    _model_registry,  # UpdateModelPackage keeps what it does not change
    _endpoint_updates,  # UpdateEndpoint (warms the new variants)
    _metric_data,  # GetMetricData with CloudWatch's statistics
    _api_front,  # started after deployment: the REST APIs over HTTP
    _sqs_event_sources,  # started after deployment: SQS → Lambda
    _alarms,  # started after deployment: alarms with CloudWatch's semantics
    _schedules,  # started after deployment: rate(...) rules fire on time
)
"""Every emulation, in the order the embedded cloud installs and starts them (it stops them in reverse)."""
