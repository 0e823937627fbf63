"""SageMaker inference handlers for a heavy use case's real-time endpoint.

The endpoint serves the same ``model.onnx`` the score function serves, with onnxruntime and the
contract's feature definition (:mod:`shared.usecase.features`): no scikit-learn at inference time.
Request: ``application/json``, one record or ``{"records": [...]}``; each record is validated
against the contract first. Response: ``{"predictions": [{"score": p}, ...], "provider": "..."}``,
``provider`` being the onnxruntime execution provider that scored.

On a GPU instance (whose image installs ``onnxruntime-gpu``) the session runs on the CUDA provider;
without a CUDA provider or a visible GPU it serves on the CPU
(:mod:`shared.scoring.execution_provider`). At load it logs which provider serves and why, and
writes one ``ModelLoads`` EMF document with the provider as a dimension
(:func:`shared.scoring.telemetry.model_load_document`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

if __package__ in (None, ""):  # run from the source bundle, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.environment import USECASE_FILE_VARIABLE
from shared.scoring.checks import RecordChecker
from shared.scoring.execution_provider import GpuVisibility, ProviderChoice, choose_providers, probe_gpu, served_by
from shared.scoring.telemetry import model_load_document
from shared.usecase.features import onnx_feed
from shared.usecase.settings import UseCase, load_usecase

JSON = "application/json"
PROBABILITIES_OUTPUT = "probabilities"
PROVIDER_FIELD = "provider"
"""The response's field naming the execution provider that scored (clients read only ``predictions``)."""

logger = logging.getLogger(__name__)


class InvalidRequestError(ValueError):
    """The request is not JSON records the contract accepts (the container answers 4xx)."""


@dataclass(frozen=True)
class LoadedModel:
    session: Any
    usecase: UseCase
    checker: RecordChecker
    """The score function's record checks: a record to score needs no label."""
    serving: ProviderChoice
    """The execution provider the session serves on, and why."""


@dataclass(frozen=True)
class Predictions:
    """Positive-class scores in record order, and the provider that computed them."""

    scores: list[float]
    provider: str


def model_fn(model_dir: str) -> LoadedModel:
    """SageMaker's load hook (one argument: the toolkit passes a context to a two-argument one)."""
    import onnxruntime as ort

    return load_model(model_dir, available_providers=ort.get_available_providers(), gpu=probe_gpu())


def load_model(
    model_dir: str,
    *,
    available_providers: Sequence[str],
    gpu: GpuVisibility,
    session_factory: Callable[[str, list[str]], Any] | None = None,
    metrics_out: TextIO | None = None,
) -> LoadedModel:
    """The model of ``model_dir`` in a session on the provider :func:`choose_providers` picks; logs and
    emits which provider serves (the session's own first provider: onnxruntime may drop CUDA at load)."""
    usecase_file = Path(os.environ.get(USECASE_FILE_VARIABLE, Path(__file__).resolve().parent.parent / "usecase.toml"))
    usecase = load_usecase(usecase_file)
    wanted = choose_providers(available_providers, gpu)
    session = (session_factory or _onnxruntime_session)(str(Path(model_dir) / "model.onnx"), list(wanted.providers))
    serving = served_by(wanted, session.get_providers())
    logger.warning("serving %s on %s: %s", usecase.name, serving.provider, serving.reason)
    (metrics_out or sys.stdout).write(
        model_load_document(usecase.name, provider=serving.provider, reason=serving.reason) + "\n"
    )
    return LoadedModel(session=session, usecase=usecase, checker=RecordChecker(usecase.contract), serving=serving)


def _onnxruntime_session(path: str, providers: list[str]) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=providers)


def input_fn(body: str | bytes, content_type: str = JSON) -> list[dict[str, Any]]:
    if content_type.split(";", maxsplit=1)[0].strip() != JSON:
        raise InvalidRequestError(f"unsupported content type {content_type!r}; send {JSON}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the body is not JSON: {exc}") from exc
    records = document.get("records", [document]) if isinstance(document, dict) else document
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records) or not records:
        raise InvalidRequestError("send one JSON object or {'records': [objects]}")
    return records


def predict_fn(records: list[dict[str, Any]], model: LoadedModel) -> Predictions:
    contract = model.usecase.contract
    problems = {i: errors for i, r in enumerate(records) if (errors := model.checker.errors(r))}
    if problems:
        raise InvalidRequestError(json.dumps({"invalid_records": problems}))
    (probabilities,) = model.session.run([PROBABILITIES_OUTPUT], onnx_feed(records, contract))
    return Predictions(scores=[float(row[1]) for row in probabilities], provider=model.serving.provider)


def output_fn(predictions: Predictions, accept: str = JSON) -> tuple[str, str]:
    if accept not in (JSON, "*/*"):
        raise InvalidRequestError(f"cannot answer in {accept!r}; accept {JSON}")
    document = {"predictions": [{"score": s} for s in predictions.scores], PROVIDER_FIELD: predictions.provider}
    return json.dumps(document), JSON
