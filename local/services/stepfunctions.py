"""Small fixes to moto's Step Functions interpreter (the ASL "parser" backend, moto 5.2.x).

What was checked against the interpreter (see ``tests/integration/test_embedded_sagemaker.py``):

* ``arn:aws:states:::sagemaker:createTrainingJob`` (request-response) is an "unsupported optimised
  integration": the interpreter logs a warning and forwards the call through boto3 to
  ``localhost:$MOTO_PORT`` with the state's parameters as given (``TrainingJobName``,
  ``HyperParameters`` ...: names and casing survive), so it reaches :mod:`local.services.sagemaker`. Its
  result is ``{"TrainingJobArn": ...}``. ``.sync`` is not supported (it raises); poll instead.
* ``arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob`` returns the API's PascalCase response;
  ``ResultSelector`` paths such as ``$.TrainingJobStatus`` work (timestamps come back as strings).
* ``sns:publish``, ``lambda:invoke`` with ``Payload.$``, ``Catch``, ``Choice`` and ``Wait`` work as
  on AWS. ``Wait`` really sleeps its ``Seconds`` (the interpreter offers no hook to shorten waits):
  a pipeline meant to run locally should take its poll interval from its input or a parameter.

Checked for the model registry: moto's ``CreateModelPackage`` accepts ``ModelMetrics``,
``CustomerMetadataProperties``, ``InferenceSpecification`` and ``ModelApprovalStatus``, and
``DescribeModelPackage`` returns them; ``ListModelPackages`` returns summaries (with
``ModelApprovalStatus``, without metrics or metadata -- as AWS does). No patch needed.

Patched here:

* ``StartExecution`` without a ``name``: the interpreter names the execution ``None`` (AWS
  generates a UUID), so a second unnamed execution fails with ``ExecutionAlreadyExists``. The
  patch gives an unnamed execution a UUID name.
* ``SendTaskFailure``: moto's response handler passes the ``error`` on but drops the ``cause``, so a
  ``Catch`` of the waiting task sees ``"Cause": null`` (AWS gives the cause as sent). The patch passes it.
* ``ToleratedFailurePercentage`` as a whole number (``5``; AWS takes any number from 0 to 100, and CDK writes
  integers as such): moto's grammar accepts only a decimal literal (``5.0``) and refuses the whole definition.
  The patch writes the value as a float before parsing (moto still does not enforce it: Sluice's batch machine
  catches every item's failure and its finish step enforces the tolerance).
* ``StopExecution`` while a task runs: the interpreter marks the program stopped, but an error the running task
  raises afterwards (and its ``Catch`` path ending in a ``Fail`` state) can overwrite that, and the execution
  ends ``FAILED``. On AWS a stopped execution is ``ABORTED``, with the stop's error and cause, whatever a
  task still in flight does. The patch keeps a stopped execution ``ABORTED``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


TOLERATED_PERCENTAGE = "ToleratedFailurePercentage"


def decimal_tolerated_percentages(definition: str) -> str:
    """``definition`` with every whole-number ``ToleratedFailurePercentage`` written as a float (``5`` → ``5.0``);
    a definition that is not JSON, or has none, is returned as it is."""
    if TOLERATED_PERCENTAGE not in definition:
        return definition
    try:
        document = json.loads(definition)
    except json.JSONDecodeError:
        return definition

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: float(value)
                if key == TOLERATED_PERCENTAGE and isinstance(value, int) and not isinstance(value, bool)
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return json.dumps(walk(document))


class StepFunctionsPatches:
    """Install / uninstall the fixes above (process-global, as every moto patch here)."""

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        if self._patches:
            return
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        original = StepFunctionsParserBackend.start_execution

        def start_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
            return original(backend, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

        self._patches.append((StepFunctionsParserBackend, "start_execution", original))
        setattr(StepFunctionsParserBackend, "start_execution", start_execution)  # noqa: B010 - a patch, undone on uninstall
        self._patch_sdk_results()
        self._patch_task_failure_cause()
        self._patch_tolerated_failure_percentage()
        self._patch_stopped_stays_aborted()

    def _patch_stopped_stays_aborted(self) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus
        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

        original_stop = Execution.stop
        original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

        def stop(execution: Any, stop_date: datetime, error: str | None, cause: str | None) -> Any:
            execution.sluice_stopped = (stop_date, error, cause)
            return original_stop(execution, stop_date, error, cause)

        def reflect_execution_status(communication: Any) -> None:
            original_reflect(communication)
            execution = communication.execution
            stopped = getattr(execution, "sluice_stopped", None)
            if stopped is not None and execution.exec_status != ExecutionStatus.ABORTED:
                execution.stop_date, execution.error, execution.cause = stopped
                execution.exec_status = ExecutionStatus.ABORTED

        self._patches.append((Execution, "stop", original_stop))
        setattr(Execution, "stop", stop)  # noqa: B010 - a patch, undone on uninstall
        self._patches.append((BaseExecutionWorkerCommunication, "_reflect_execution_status", original_reflect))
        setattr(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect_execution_status)  # noqa: B010 - a patch, undone on uninstall

    def _patch_tolerated_failure_percentage(self) -> None:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        original = AmazonStateLanguageParser.__dict__["parse"]

        def parse(definition: str) -> Any:
            return original.__func__(decimal_tolerated_percentages(definition))

        self._patches.append((AmazonStateLanguageParser, "parse", original))
        setattr(AmazonStateLanguageParser, "parse", staticmethod(parse))  # noqa: B010 - a patch, undone on uninstall

    def _patch_task_failure_cause(self) -> None:
        from moto.core.responses import EmptyResult
        from moto.stepfunctions.responses import StepFunctionResponse

        original = StepFunctionResponse.send_task_failure

        def send_task_failure(response: Any) -> Any:
            response.stepfunction_backend.send_task_failure(
                response._get_param("taskToken"), error=response._get_param("error"), cause=response._get_param("cause")
            )
            return EmptyResult()

        self._patches.append((StepFunctionResponse, "send_task_failure", original))
        setattr(StepFunctionResponse, "send_task_failure", send_task_failure)  # noqa: B010 - a patch, undone on uninstall

    def _patch_sdk_results(self) -> None:
        """SDK integrations return JSON on AWS (timestamps as ISO strings); moto keeps boto3's datetimes in the
        state, and the execution's input/output then fail to serialize (DescribeExecution answers 500)."""
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_aws_sdk as aws_sdk,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_unsupported as unsupported,
        )

        for owner in (aws_sdk.StateTaskServiceAwsSdk, unsupported.StateTaskServiceUnsupported):
            original = owner._eval_service_task

            def eval_service_task(task: Any, env: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                result = _original(task, env, *args, **kwargs)
                if env.stack:
                    env.stack[-1] = json.loads(json.dumps(env.stack[-1], default=_json_default))
                return result

            self._patches.append((owner, "_eval_service_task", original))
            setattr(owner, "_eval_service_task", eval_service_task)  # noqa: B010 - a patch, undone on uninstall

    def uninstall(self) -> None:
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)
