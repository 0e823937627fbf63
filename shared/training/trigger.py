"""Start a training run for new curated data, at most one at a time per use case.

A burst of manifests arrives as one SQS batch (the event source's batching window is the use
case's ``debounce_seconds``). The batch starts one execution of the training state machine,
unless one is already running; its name is derived from the time bucket, so a redelivered
batch finds the execution already there (``ExecutionAlreadyExists`` is success).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shared.training.exceptions import TriggerError

EXECUTION_NAME_MAX = 63
"""Execution names become SageMaker training-job names: ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``."""


class TrainingRuns(Protocol):
    def running(self) -> list[str]:
        """Names of the executions that are RUNNING now."""
        ...

    def start(self, name: str, document: dict[str, Any]) -> bool:
        """Start an execution; False when one of that name already exists."""
        ...


@dataclass(frozen=True, kw_only=True)
class TriggerOutcome:
    action: Literal["started", "already_started", "skipped_running"]
    execution_name: str
    running: tuple[str, ...] = ()


def execution_name(usecase: str, now: datetime, *, bucket_seconds: int) -> str:
    """``telco-churn-data-20261123t0015``: the same for every batch of one time bucket."""
    bucket = max(bucket_seconds, 60)
    epoch = int(now.astimezone(UTC).timestamp())
    start = datetime.fromtimestamp(epoch - epoch % bucket, UTC)
    name = f"{usecase.replace('_', '-')}-data-{start:%Y%m%dt%H%M}"
    return name[-EXECUTION_NAME_MAX:].lstrip("-")


def start_for_new_data(
    runs: TrainingRuns, *, usecase: str, now: datetime, bucket_seconds: int, manifest_keys: list[str]
) -> TriggerOutcome:
    name = execution_name(usecase, now, bucket_seconds=bucket_seconds)
    running = runs.running()
    if running:
        return TriggerOutcome(action="skipped_running", execution_name=name, running=tuple(running))
    document = {"trigger": "new_data", "manifests": len(manifest_keys), "requested_at": now.isoformat()}
    started = runs.start(name, document)
    return TriggerOutcome(action="started" if started else "already_started", execution_name=name)


class StepFunctionsRuns:
    """:class:`TrainingRuns` on one Step Functions state machine, through a boto3 client."""

    def __init__(self, client: Any, *, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def running(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.list_executions(stateMachineArn=self._arn, statusFilter="RUNNING", maxResults=10)
        except (BotoCoreError, ClientError) as exc:
            raise TriggerError(f"cannot list the running executions of {self._arn}: {exc}") from exc
        return [execution["name"] for execution in response.get("executions", [])]

    def start(self, name: str, document: dict[str, Any]) -> bool:
        import json

        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(document))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise TriggerError(f"cannot start {name} of {self._arn}: {exc}") from exc
        except BotoCoreError as exc:
            raise TriggerError(f"cannot start {name} of {self._arn}: {exc}") from exc
        return True
