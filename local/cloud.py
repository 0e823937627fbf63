"""The embedded cloud: moto in server mode, the stack deployed from its synthesized template.

``EmbeddedCloud`` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1, turns on moto's Step
Functions interpreter, installs every service emulation of :data:`local.services.emulations.EMULATIONS`
in order (the in-process Lambda runtime, :mod:`local.services.lambdas`, first), deploys the template
(:mod:`local.template.deployer`), starts the emulations that serve the deployed stack, and writes
``outputs.json`` (the shape ``cdk deploy --outputs-file`` writes) and ``deployment.json``. Any boto3
client or the AWS CLI reaches it at :attr:`endpoint_url` with any credentials. Region us-east-1,
account 123456789012 (moto's default).

Development and demo tooling only; never deployed. Process-global effects while it runs: the
``MOTO_PORT`` environment variable (moto's Step Functions interpreter calls back to
``localhost:$MOTO_PORT``), moto's in-process configuration and backends (reset on start and stop),
and the patched moto functions -- so run one ``EmbeddedCloud`` per process at a time.

On stop, the emulations are stopped in reverse order, then uninstalled in reverse order (moto's
originals back). The emulations: SageMaker training jobs that run in a subprocess
(:mod:`local.services.sagemaker`, patched into moto before deployment), SageMaker endpoints served in-process
(:mod:`local.services.sagemaker_endpoints`), EMF lines printed by handlers turned into CloudWatch metrics
(:mod:`local.services.emf`), the SQS event source mappings' pollers (:mod:`local.services.event_sources`, started after
deployment) and the HTTP front for the template's API Gateway REST APIs (:mod:`local.services.apigateway`, on
its own port :attr:`api_port`; it also serves the embedded-cloud controls under ``/_sluice/``).
Outputs that are ``execute-api`` URLs of a local REST API are rewritten to the front's URL in
``outputs.json`` (the value a user calls); ``deployment.json`` keeps the originals. EventBridge
``rate(...)`` schedules fire on time (:mod:`local.services.schedules`); ``cron(...)`` ones do not (said on startup).
CloudWatch alarms are evaluated with CloudWatch's semantics (:mod:`local.services.alarms`); their state changes
reach EventBridge rules (:mod:`local.services.events`). ``GetMetricData`` answers with the same statistics,
percentiles included (:mod:`local.services.metrics`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from local.exceptions import IdleTimeoutError, LocalCloudError
from local.services.alarms import AlarmEvaluator
from local.services.apigateway import ApiGateway, local_stage_url
from local.services.emf import EmfPublisher
from local.services.emulations import Services, Site
from local.services.event_sources import SqsPoller
from local.services.events import EventRouter
from local.services.lambdas import LambdaRuntime
from local.services.sagemaker import TrainingRunner
from local.services.sagemaker_endpoints import EndpointServer
from local.services.schedules import Scheduler
from local.template.assets import publish_file_assets
from local.template.deployer import Deployer, Deployment, write_outputs_file
from local.template.model import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, Template

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ROOT / ".local"
STEP_FUNCTIONS_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


class EmbeddedCloud:
    """Runs the stack locally. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    ``template`` is a template file (its directory is the asset root, as in ``cdk.out/``) or an
    already-parsed template body (give ``asset_root``); when omitted the CDK app is synthesized for
    the use case through :func:`infra.assembly.synthesize` (cached) and its one stack is used, or
    ``stack_name`` among several. The use case is ``usecase`` if given, else ``$SLUICE_USECASE``, else
    ``usecases/telco_churn.toml`` (:func:`infra.assembly.usecase_file`); the SageMaker endpoints
    served in-process read it too.
    """

    def __init__(
        self,
        *,
        template: Path | Mapping[str, Any] | None = None,
        stack_name: str | None = None,
        asset_root: Path | None = None,
        usecase: Path | None = None,
        port: int = 0,
        api_port: int = 0,
        state_dir: Path = DEFAULT_STATE_DIR,
        outputs_file: Path | None = None,
        parameters: Mapping[str, str] | None = None,
        retry_backoff_s: float = 0.2,
        alarm_tick_s: float | None = 1.0,
        project_root: Path = ROOT,
    ) -> None:
        self._template_source = template
        self._stack_name = stack_name
        self._asset_root = asset_root
        self._usecase = usecase
        self._requested_port = port
        self._requested_api_port = api_port
        self.state_dir = state_dir
        self.outputs_file = outputs_file or state_dir / "outputs.json"
        self.deployment_file = state_dir / "deployment.json"
        self._parameters = parameters
        self._retry_backoff_s = retry_backoff_s
        self._alarm_tick_s = alarm_tick_s
        """How often alarms are evaluated and schedules checked; None: never by a thread (tests call
        ``alarms.evaluate_once`` and ``scheduler.tick``)."""
        self._project_root = project_root
        self.region = DEFAULT_REGION
        self.account_id = DEFAULT_ACCOUNT_ID
        self._server: Any = None
        self._port: int | None = None
        self._saved_moto_port: str | None = None
        self._saved_config: dict[str, Any] | None = None
        self._services: Services | None = None
        """The service emulations while the cloud runs (:data:`local.services.emulations.EMULATIONS`)."""
        self._template: Template | None = None
        self._deployment: Deployment | None = None
        self._clients: dict[str, Any] = {}
        self.startup_s: float | None = None

    # -- properties -----------------------------------------------------------------------------

    @property
    def services(self) -> Services:
        """The running service emulations."""
        if self._services is None:
            raise LocalCloudError("the embedded cloud is not running")
        return self._services

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalCloudError("the embedded cloud is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_port(self) -> int:
        """The port of the API Gateway front (and the ``/_sluice/`` controls) on 127.0.0.1."""
        return self.services.api.front.port

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<api_port>``: a REST API's stage is at ``<api_url>/<stage>/``."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_gateway(self) -> ApiGateway:
        return self.services.api.front.gateway

    @property
    def endpoints(self) -> EndpointServer:
        return self.services.endpoints

    @property
    def emf(self) -> EmfPublisher:
        return self.services.emf

    @property
    def template(self) -> Template:
        if self._template is None:
            raise LocalCloudError("the embedded cloud has not deployed a template")
        return self._template

    @property
    def stack_name(self) -> str:
        return self.template.stack_name

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            raise LocalCloudError("the embedded cloud has not deployed a template")
        return self._deployment

    @property
    def outputs(self) -> dict[str, str]:
        """The stack's resolved outputs: ``{"<OutputKey>": "<value>"}``."""
        return self.deployment.outputs

    @property
    def lambdas(self) -> LambdaRuntime:
        return self.services.lambdas

    @property
    def training(self) -> TrainingRunner:
        return self.services.training

    @property
    def alarms(self) -> AlarmEvaluator:
        return self.services.alarms

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler

    @property
    def events(self) -> EventRouter:
        return self.services.events

    @property
    def event_sources(self) -> SqsPoller:
        return self.services.event_sources.poller

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` pointed at the embedded cloud (cached per service)."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
            )
        return self._clients[service]

    def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Wait until nothing runs in the background: no asynchronous Lambda event queued, retrying or
        running, no training job running, no SQS batch in flight or visible message on a mapped queue.

        Does not wait for Step Functions executions: poll ``DescribeExecution`` for those.
        """
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        while True:
            if not self.lambdas.wait_until_idle(remaining()):
                pending = self.lambdas.pending
                raise IdleTimeoutError(f"{pending} asynchronous invocations still pending after {timeout}s")
            if not self.training.wait_until_idle(remaining()):
                raise IdleTimeoutError(f"{self.training.active} training jobs still running after {timeout}s")
            if not self.event_sources.wait_until_idle(remaining()):
                raise IdleTimeoutError(f"SQS event sources still busy after {timeout}s")
            # one source may have fed another (a batch queued an async event, a job wrote to S3): recheck
            if self.lambdas.pending == 0 and self.training.active == 0 and self.event_sources.busy == 0:
                return

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        started = time.perf_counter()
        try:
            template, asset_root = self._load_template()
            self._start_server()
            self._services = Services(
                Site(
                    endpoint_url=self.endpoint_url,
                    region=self.region,
                    account_id=self.account_id,
                    state_dir=self.state_dir,
                    project_root=self._project_root,
                    usecase_file=usecase if (usecase := self._usecase_file()).is_file() else None,
                    client=self.client,
                    retry_backoff_s=self._retry_backoff_s,
                    tick_s=self._alarm_tick_s,
                    api_port=self._requested_api_port,
                )
            )
            for emulation in self._services.build():
                emulation.install()
            self._template = template
            publish_file_assets(
                self.client("s3"),
                asset_root=asset_root,
                stack_name=template.stack_name,
                account_id=self.account_id,
                region=self.region,
            )
            deployer = Deployer(
                template, client=self.client, lambdas=self.lambdas, asset_root=asset_root, state_dir=self.state_dir
            )
            self._deployment = deployer.deploy()
            for emulation in self._services.emulations:
                emulation.start(self._deployment)
            self._use_local_api_urls(self._deployment)
            self._deployment.write(self.deployment_file)
            write_outputs_file(self.outputs_file, self._deployment)  # last: its appearance means "ready"
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - started
        not_emulated = self._deployment.not_emulated_types
        logger.info(
            "embedded cloud for %s on %s in %.1fs; not emulated: %s",
            template.stack_name,
            self.endpoint_url,
            self.startup_s,
            ", ".join(not_emulated) or "nothing",
        )
        unsupported = self._deployment.apis.unsupported_integrations()
        logger.info(
            "API Gateway front on %s serving %d REST API(s)%s; SageMaker endpoints served in-process; "
            "handler EMF output becomes CloudWatch metrics",
            self.api_url,
            len(self._deployment.apis.apis),
            f"; integrations not run: {', '.join(unsupported)}" if unsupported else "",
        )
        logger.info(
            "polling %d SQS event source mapping(s); SageMaker training jobs run in subprocesses under %s; "
            "EventBridge rate(...) schedules fire on time, cron(...) ones do not",
            len(self.event_sources.mappings),
            self.state_dir / "sagemaker",
        )
        return self

    def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Stop every emulation's background work (in reverse order: the SQS pollers and training jobs
        first, the async Lambda worker drained last), then undo their patches, reset moto, stop the
        server. Idempotent."""
        self._stop_services(drain_timeout_s)
        self._stop_server()

    def _stop_services(self, drain_timeout_s: float) -> None:
        if self._services is None:
            return
        emulations = list(reversed(self._services.emulations))
        try:
            for emulation in emulations:
                emulation.stop(drain_timeout_s)
        finally:
            for emulation in emulations:
                emulation.uninstall()
            self._services = None

    def _stop_server(self) -> None:
        if self._server is not None:
            try:
                self._moto_api("reset")
                if self._saved_config is not None:
                    self._moto_api("config", self._saved_config)
            finally:
                self._server.stop()
                self._server = None
                if self._saved_moto_port is None:
                    os.environ.pop("MOTO_PORT", None)
                else:
                    os.environ["MOTO_PORT"] = self._saved_moto_port
        self._clients.clear()
        self._port = None

    # -- internals ------------------------------------------------------------------------------

    def _load_template(self) -> tuple[Template, Path]:
        source = self._template_source
        if isinstance(source, Path):
            template = Template.from_file(source, stack_name=self._stack_name, parameter_overrides=self._parameters)
            return template, self._asset_root or source.parent
        if source is not None:
            if self._asset_root is None:
                raise LocalCloudError("a template body needs asset_root (the cloud assembly directory)")
            name = self._stack_name or "Sluice-local"
            return Template(source, stack_name=name, parameter_overrides=self._parameters), self._asset_root
        from infra.assembly import synthesize

        assembly = synthesize(usecase=self._usecase_file())
        stacks = assembly.stacks
        if self._stack_name is None and len(stacks) > 1:
            candidates = [name for name in stacks if name.startswith("Sluice-")]
            if len(candidates) != 1:
                raise LocalCloudError(f"the assembly holds {sorted(stacks)}; name one with stack_name")
            self._stack_name = candidates[0]
        name = self._stack_name or next(iter(stacks))
        template = Template(assembly.template(name), stack_name=name, parameter_overrides=self._parameters)
        return template, assembly.outdir

    def _usecase_file(self) -> Path:
        """The ``usecase`` given, else ``$SLUICE_USECASE``, else the default use case (as ``app.py`` chooses)."""
        from infra.assembly import usecase_file

        return usecase_file(self._usecase)

    def _use_local_api_urls(self, deployment: Deployment) -> None:
        """Outputs that are ``execute-api`` URLs of a local REST API → the API front's URL (originals kept)."""
        for key, value in list(deployment.outputs.items()):
            local = local_stage_url(value, deployment.apis, self.api_url)
            if local is not None:
                deployment.original_outputs[key] = value
                deployment.outputs[key] = local

    def _start_server(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        self._server.start()
        self._port = int(self._server.get_host_and_port()[1])
        self._saved_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self._port)
        self._moto_api("reset")
        self._saved_config = {
            "stepfunctions": self._moto_api("config").get("stepfunctions", {"execute_state_machine": False})
        }
        self._moto_api("config", STEP_FUNCTIONS_CONFIG)

    def _moto_api(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST (reset, or config with ``body``) or GET (config) on moto's own ``/moto-api``."""
        method = "POST" if body is not None or path == "reset" else "GET"
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.endpoint_url}/moto-api/{path}",
            data=json.dumps(body or {}).encode() if method == "POST" else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            text = response.read().decode() or "{}"
        return json.loads(text) if text.lstrip().startswith("{") else {}
