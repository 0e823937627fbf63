"""SageMaker training jobs that actually run, in a subprocess, under SageMaker's container contract.

moto's SageMaker is metadata only: ``CreateTrainingJob`` records a job that is ``Completed`` at once
and has no ``StopTrainingJob``. :class:`TrainingRunner` patches moto's backend so that a created job
is ``InProgress`` and runs in a background thread (one per job), the way a script-mode framework
container would run it:

* a job directory ``<state_dir>/sagemaker/<job>/`` plays ``/opt/ml``: ``input/data/<channel>/``
  (each ``InputDataConfig`` channel's ``S3DataSource.S3Uri`` prefix, downloaded from the embedded
  cloud), ``input/config/hyperparameters.json`` (every value a string, as SageMaker writes it),
  ``input/config/inputdataconfig.json``, ``input/config/resourceconfig.json``, ``model/``,
  ``output/data/``, ``output/failure``; ``code/`` holds the extracted ``sagemaker_submit_directory``
  (an ``s3://`` URL of a ``sourcedir.tar.gz``); ``stdout.log`` / ``stderr.log`` keep the output;
* the entry point ``sagemaker_program`` runs with this project's interpreter (``sys.executable``),
  cwd = the source directory, hyperparameters (without the ``sagemaker_*`` ones, JSON-decoded where
  they are JSON, as the SageMaker SDK encodes them) as ``--name value`` arguments, and the toolkit's
  environment: ``SM_MODEL_DIR``, ``SM_CHANNELS``, ``SM_CHANNEL_<NAME>``, ``SM_HPS``, ``SM_HP_<NAME>``,
  ``SM_OUTPUT_DATA_DIR``, ``SM_OUTPUT_FAILURE``, ``SM_INPUT_DIR``, ``SM_INPUT_CONFIG_DIR``,
  ``SM_OUTPUT_DIR``, ``SM_TRAINING_JOB_NAME``, ``TRAINING_JOB_NAME``, ``SM_NUM_CPUS``,
  ``SM_NUM_GPUS=0``, ``SM_CURRENT_HOST``, ``SM_HOSTS``, ``SM_USER_ENTRY_POINT``, ``PYTHONPATH`` = the
  source directory, and ``AWS_ENDPOINT_URL`` (+ dummy credentials) so boto3 in the script reaches
  the embedded cloud;
* ``StoppingCondition.MaxRuntimeInSeconds`` is enforced: the process is killed and the job is
  ``Failed`` with ``FailureReason`` ``MaxRuntimeExceeded: ...`` and ``SecondaryStatus``
  ``MaxRuntimeExceeded``;
* on exit 0 ``model/`` is tarred to ``<S3OutputPath>/<job>/output/model.tar.gz`` (and a non-empty
  ``output/data/`` to ``.../output/output.tar.gz``); the job becomes ``Completed`` with
  ``ModelArtifacts``, ``TrainingStartTime``/``TrainingEndTime``, ``TrainingTimeInSeconds`` and
  ``BillableTimeInSeconds``; ``FinalMetricDataList`` holds the last match of each
  ``AlgorithmSpecification.MetricDefinitions`` regex in the job's output;
* on a non-zero exit (or a setup error) the job is ``Failed`` with ``FailureReason`` = the content of
  ``output/failure``, else ``AlgorithmError:`` and the stderr tail (at most 1,024 characters);
* ``StopTrainingJob`` (added to moto) terminates the process: ``Stopping`` then ``Stopped``, no
  artifacts uploaded.

``DescribeTrainingJob`` is moto's own: the job object is updated in place (every attribute exists
from creation, so moto's serializer never sees the object change shape).

Not emulated: no container image is pulled (``TrainingImage`` is recorded only, the code runs with
this project's interpreter and packages); the instance type and count are recorded, not
provisioned (one process, ``SM_NUM_GPUS=0``); managed spot (``EnableManagedSpotTraining``,
``MaxWaitTimeInSeconds``), checkpoints, VPC, network isolation, ``Pipe``/``FastFile`` input modes,
``ManifestFile`` data sources and distributed training are ignored or refused; nothing is written to
CloudWatch Logs or Metrics (see ``stdout.log`` / ``stderr.log``); a job without
``sagemaker_submit_directory`` (a bring-your-own-container job) fails with a ``ClientError`` reason.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from local.exceptions import LocalCloudError

logger = logging.getLogger(__name__)

DEFAULT_MAX_RUNTIME_S: Final = 86_400
FAILURE_REASON_LIMIT: Final = 1024
STOP_GRACE_S: Final = 2.0
CURRENT_HOST: Final = "algo-1"


class TrainingSetupError(LocalCloudError):
    """A training job cannot be prepared (bad channel, missing source, unsupported option)."""


@dataclass(kw_only=True)
class TrainingRun:
    """What the runner knows of one job (``TrainingRunner.runs``)."""

    name: str
    job_dir: Path
    status: str = "InProgress"
    returncode: int | None = None
    failure_reason: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stop_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def stdout_log(self) -> Path:
        return self.job_dir / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.job_dir / "stderr.log"


def _now() -> datetime:
    return datetime.now(UTC)


def _s3_location(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise TrainingSetupError(f"not an s3:// URL: {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def _decode_hyperparameter(value: str) -> Any:
    """The SageMaker SDK JSON-encodes each hyperparameter; hand-written ones are often plain strings."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class TrainingRunner:
    """Runs moto's SageMaker training jobs locally. :meth:`install` patches moto; :meth:`stop` ends runs."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        state_dir: Path,
        python: str = sys.executable,
        client: Callable[[str], Any] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.jobs_dir = state_dir / "sagemaker"
        self.python = python
        self.runs: dict[str, TrainingRun] = {}
        self._client_factory = client
        self._threads: dict[str, threading.Thread] = {}
        self._changed = threading.Condition()
        self._active = 0
        self._patches: list[tuple[Any, str, Any, bool]] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def active(self) -> int:
        """Jobs preparing, running or uploading."""
        with self._changed:
            return self._active

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no training job is running; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active == 0, timeout=timeout)

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Terminate every running job's process and join its thread."""
        for run in list(self.runs.values()):
            run.stop_requested.set()
        for name, thread in list(self._threads.items()):
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                logger.warning("training job %s did not stop within %.1fs", name, timeout_s)
        self._threads.clear()

    def install(self) -> None:
        """Patch moto's SageMaker backend (create runs the job; stop exists). Undo with :meth:`uninstall`."""
        if self._patches:
            return
        from moto.sagemaker.models import SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse
        from moto.sagemaker.utils import arn_formatter

        runner = self
        original_create = SageMakerModelBackend.create_training_job

        def create_training_job(backend: Any, **kwargs: Any) -> Any:
            specification = dict(kwargs.get("algorithm_specification") or {})
            job = original_create(backend, **kwargs)
            runner._accept(job, specification)
            return job

        def stop_training_job(backend: Any, training_job_name: str) -> None:
            from moto.sagemaker.exceptions import ValidationError

            job = backend.training_jobs.get(training_job_name)
            if job is None:
                arn = arn_formatter("training-job", training_job_name, backend.account_id, backend.region_name)
                raise ValidationError(message=f"Could not find training job '{arn}'.")
            runner._request_stop(job)

        def stop_training_job_response(response: Any) -> Any:
            from moto.core.responses import ActionResult

            response.sagemaker_backend.stop_training_job(response._get_param("TrainingJobName"))
            return ActionResult({})

        for owner, name, replacement in (
            (SageMakerModelBackend, "create_training_job", create_training_job),
            (SageMakerModelBackend, "stop_training_job", stop_training_job),
            (SageMakerResponse, "stop_training_job", stop_training_job_response),
        ):
            existed = name in vars(owner)
            self._patches.append((owner, name, vars(owner).get(name), existed))
            setattr(owner, name, replacement)

    def uninstall(self) -> None:
        while self._patches:
            owner, name, original, existed = self._patches.pop()
            if existed:
                setattr(owner, name, original)
            else:
                delattr(owner, name)

    # -- moto side ------------------------------------------------------------------------------

    def _accept(self, job: Any, specification: Mapping[str, Any]) -> None:
        """Turn moto's instantly-completed job into an InProgress one and start running it."""
        now = _now()
        job.algorithm_specification = dict(specification)  # moto writes fake MetricDefinitions
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the local job directory"}
        ]
        job.final_metric_data_list = []
        job.training_start_time = None
        job.training_end_time = None
        job.failure_reason = None
        job.training_time_in_seconds = None
        job.billable_time_in_seconds = None
        job.model_artifacts = None
        job.last_modified_time = now
        name = str(job.training_job_name)
        run = TrainingRun(name=name, job_dir=self.jobs_dir / name)
        thread = threading.Thread(target=self._run, args=(job, run), name=f"local-training-{name}", daemon=True)
        with self._changed:
            self.runs[name] = run
            self._threads[name] = thread
            self._active += 1
        thread.start()

    def _request_stop(self, job: Any) -> None:
        run = self.runs.get(str(job.training_job_name))
        if run is None or run.status != "InProgress":
            return
        job.training_job_status = "Stopping"
        self._secondary(job, "Stopping", "Stopping the training job")
        run.stop_requested.set()

    @staticmethod
    def _secondary(job: Any, status: str, message: str) -> None:
        now = _now()
        transitions = [dict(t) for t in job.secondary_status_transitions or []]
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.secondary_status_transitions = transitions  # replaced, never mutated: the server may be reading it
        job.secondary_status = status
        job.last_modified_time = now

    # -- the run --------------------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        if self._client_factory is not None:
            return self._client_factory(service)
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
        )

    def _run(self, job: Any, run: TrainingRun) -> None:
        try:
            self._run_job(job, run)
        except Exception as exc:
            logger.exception("training job %s failed in the local runner", run.name)
            self._finish(job, run, "Failed", reason=f"ClientError: {exc}"[:FAILURE_REASON_LIMIT])
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def _run_job(self, job: Any, run: TrainingRun) -> None:
        s3 = self._client("s3")
        shutil.rmtree(run.job_dir, ignore_errors=True)
        layout = {part: run.job_dir / part for part in ("input/data", "input/config", "model", "output/data", "code")}
        for directory in layout.values():
            directory.mkdir(parents=True, exist_ok=True)
        failure_file = run.job_dir / "output" / "failure"
        logger.info("training job %s: working in %s", run.name, run.job_dir)

        raw_hyperparameters = {str(k): str(v) for k, v in (job.hyper_parameters or {}).items()}
        decoded = {key: _decode_hyperparameter(value) for key, value in raw_hyperparameters.items()}
        submit_directory = decoded.get("sagemaker_submit_directory")
        program = decoded.get("sagemaker_program")
        if not submit_directory or not program:
            raise TrainingSetupError(
                "only script mode runs locally: hyperparameters sagemaker_submit_directory and "
                "sagemaker_program are required (no container image is run)"
            )
        input_mode = (job.algorithm_specification or {}).get("TrainingInputMode", "File")
        if input_mode != "File":
            raise TrainingSetupError(f"TrainingInputMode {input_mode} is not supported locally (File only)")

        self._secondary(job, "Downloading", "Downloading input data and the source directory")
        channels = self._download_channels(s3, job.input_data_config or [], layout["input/data"])
        self._download_source(s3, str(submit_directory), layout["code"])
        self._write_config(job, raw_hyperparameters, layout["input/config"])

        user_hyperparameters = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        environment = self._environment(
            run, job, layout=layout, channels=channels, hyperparameters=user_hyperparameters, program=str(program)
        )
        arguments = [item for key, value in user_hyperparameters.items() for item in (f"--{key}", _cli_value(value))]
        command = [self.python, str(program), *arguments]

        self._secondary(job, "Training", "Training in a local subprocess")
        started = _now()
        job.training_start_time = started
        max_runtime = int((job.stopping_condition or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_S))
        outcome = self._execute(run, command, cwd=layout["code"], env=environment, max_runtime_s=max_runtime)
        ended = _now()
        job.training_end_time = ended
        seconds = max(1, round((ended - started).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
        job.final_metric_data_list = self._metrics(job, run, ended)

        if outcome == "stopped":
            self._finish(job, run, "Stopped", secondary="Stopped")
            return
        if outcome == "timeout":
            reason = f"MaxRuntimeExceeded: Training job exceeded MaxRuntimeInSeconds ({max_runtime}s) and was stopped"
            self._finish(job, run, "Failed", reason=reason, secondary="MaxRuntimeExceeded")
            return
        if run.returncode != 0:
            self._finish(job, run, "Failed", reason=self._failure_reason(run, failure_file))
            return

        self._secondary(job, "Uploading", "Uploading the model artifacts")
        output_path = str(job.output_data_config["S3OutputPath"]).rstrip("/")
        artifact = f"{output_path}/{run.name}/output/model.tar.gz"
        self._upload_tarball(s3, layout["model"], artifact)
        if any(layout["output/data"].iterdir()):
            self._upload_tarball(s3, layout["output/data"], f"{output_path}/{run.name}/output/output.tar.gz")
        job.model_artifacts = {"S3ModelArtifacts": artifact}
        self._finish(job, run, "Completed")

    def _finish(
        self, job: Any, run: TrainingRun, status: str, *, reason: str | None = None, secondary: str = ""
    ) -> None:
        run.status = status
        run.failure_reason = reason
        job.failure_reason = reason
        self._secondary(job, secondary or status, reason or f"Training job {status.lower()}")
        job.training_job_status = status
        if job.training_end_time is None:
            job.training_end_time = _now()
        log = "training job %s %s (logs: %s, %s)%s"
        logger.info(log, run.name, status, run.stdout_log, run.stderr_log, f": {reason}" if reason else "")

    def _download_channels(self, s3: Any, channels: list[Mapping[str, Any]], data_dir: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for channel in channels:
            name = str(channel["ChannelName"])
            source = channel.get("DataSource", {}).get("S3DataSource")
            if source is None:
                raise TrainingSetupError(f"channel {name}: only S3DataSource is supported locally")
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise TrainingSetupError(f"channel {name}: S3DataType {source['S3DataType']} is not supported locally")
            bucket, prefix = _s3_location(str(source["S3Uri"]))
            target = data_dir / name
            target.mkdir(parents=True, exist_ok=True)
            count = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    relative = key[len(prefix) :].lstrip("/") or Path(key).name
                    if key.endswith("/"):
                        continue
                    destination = target / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(destination))
                    count += 1
            if count == 0:
                raise TrainingSetupError(f"channel {name}: no objects under {source['S3Uri']}")
            found[name] = target
        return found

    @staticmethod
    def _download_source(s3: Any, url: str, code_dir: Path) -> None:
        bucket, key = _s3_location(url)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            archive.extractall(code_dir, filter="data")

    @staticmethod
    def _write_config(job: Any, hyperparameters: Mapping[str, str], config_dir: Path) -> None:
        channels = job.input_data_config or []
        (config_dir / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
        (config_dir / "inputdataconfig.json").write_text(
            json.dumps({c["ChannelName"]: {k: v for k, v in c.items() if k != "ChannelName"} for c in channels})
        )
        (config_dir / "resourceconfig.json").write_text(
            json.dumps({"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST], "network_interface_name": "lo"})
        )

    def _environment(
        self,
        run: TrainingRun,
        job: Any,
        *,
        layout: Mapping[str, Path],
        channels: Mapping[str, Path],
        hyperparameters: Mapping[str, Any],
        program: str,
    ) -> dict[str, str]:
        environment = dict(os.environ)
        environment.pop("PYTHONPATH", None)
        environment.update(
            {
                "PYTHONPATH": str(layout["code"]),
                "PYTHONUNBUFFERED": "1",
                "SM_MODEL_DIR": str(layout["model"]),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                "SM_HPS": json.dumps(dict(hyperparameters)),
                "SM_INPUT_DIR": str(run.job_dir / "input"),
                "SM_INPUT_CONFIG_DIR": str(layout["input/config"]),
                "SM_OUTPUT_DIR": str(run.job_dir / "output"),
                "SM_OUTPUT_DATA_DIR": str(layout["output/data"]),
                "SM_OUTPUT_FAILURE": str(run.job_dir / "output" / "failure"),
                "SM_MODULE_DIR": str(layout["code"]),
                "SM_USER_ENTRY_POINT": program,
                "SM_TRAINING_JOB_NAME": run.name,
                "TRAINING_JOB_NAME": run.name,
                "TRAINING_JOB_ARN": str(job.arn),
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "SM_NUM_GPUS": "0",
                "SM_CURRENT_HOST": CURRENT_HOST,
                "SM_HOSTS": json.dumps([CURRENT_HOST]),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            }
        )
        for name, path in channels.items():
            environment[f"SM_CHANNEL_{name.upper()}"] = str(path)
        for key, value in hyperparameters.items():
            environment[f"SM_HP_{key.upper()}"] = _cli_value(value)
        return environment

    def _execute(
        self, run: TrainingRun, command: list[str], *, cwd: Path, env: Mapping[str, str], max_runtime_s: int
    ) -> str:
        """Run the entry point; ``exited``, ``timeout`` (killed at MaxRuntime) or ``stopped``."""
        deadline = time.monotonic() + max_runtime_s
        with run.stdout_log.open("wb") as stdout, run.stderr_log.open("wb") as stderr:
            process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=stdout, stderr=stderr)
            run.process = process
            outcome = "exited"
            while process.poll() is None:
                if run.stop_requested.wait(timeout=0.05):
                    outcome = "stopped"
                    break
                if time.monotonic() >= deadline:
                    outcome = "timeout"
                    break
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            run.returncode = process.returncode
        return outcome

    @staticmethod
    def _failure_reason(run: TrainingRun, failure_file: Path) -> str:
        if failure_file.is_file() and (text := failure_file.read_text(errors="replace").strip()):
            return text[:FAILURE_REASON_LIMIT]
        tail = run.stderr_log.read_text(errors="replace").strip()[-(FAILURE_REASON_LIMIT - 64) :]
        return f"AlgorithmError: exit code {run.returncode}: {tail}"[:FAILURE_REASON_LIMIT]

    @staticmethod
    def _metrics(job: Any, run: TrainingRun, timestamp: datetime) -> list[dict[str, Any]]:
        definitions = (job.algorithm_specification or {}).get("MetricDefinitions") or []
        if not definitions:
            return []
        text = run.stdout_log.read_text(errors="replace") + run.stderr_log.read_text(errors="replace")
        metrics: list[dict[str, Any]] = []
        for definition in definitions:
            matches = re.findall(str(definition["Regex"]), text)
            if not matches:
                continue
            last = matches[-1]
            try:
                value = float(last[0] if isinstance(last, tuple) else last)
            except ValueError:
                continue
            metrics.append({"MetricName": definition["Name"], "Value": value, "Timestamp": timestamp})
        return metrics

    def _upload_tarball(self, s3: Any, directory: Path, url: str) -> None:
        bucket, key = _s3_location(url)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted(directory.rglob("*")):
                archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
