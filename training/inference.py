"""SageMaker inference handlers for a heavy use case's real-time endpoint (scikit-learn container).

The endpoint serves the same ``model.onnx`` the score function serves, with onnxruntime and the
contract's feature definition (:mod:`shared.usecase.features`): no scikit-learn at inference time.
Request: ``application/json``, one record or ``{"records": [...]}``; each record is validated
against the contract first. Response: ``{"predictions": [{"score": p}, ...]}``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run from the source bundle, as SageMaker does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.environment import USECASE_FILE_VARIABLE
from shared.scoring.checks import RecordChecker
from shared.usecase.features import onnx_feed
from shared.usecase.settings import UseCase, load_usecase

JSON = "application/json"
PROBABILITIES_OUTPUT = "probabilities"


class InvalidRequestError(ValueError):
    """The request is not JSON records the contract accepts (the container answers 4xx)."""


@dataclass(frozen=True)
class LoadedModel:
    session: Any
    usecase: UseCase
    checker: RecordChecker
    """The score function's record checks: a record to score needs no label."""


def model_fn(model_dir: str) -> LoadedModel:
    import onnxruntime as ort

    usecase_file = Path(os.environ.get(USECASE_FILE_VARIABLE, Path(__file__).resolve().parent.parent / "usecase.toml"))
    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    usecase = load_usecase(usecase_file)
    return LoadedModel(session=session, usecase=usecase, checker=RecordChecker(usecase.contract))


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


def predict_fn(records: list[dict[str, Any]], model: LoadedModel) -> list[float]:
    contract = model.usecase.contract
    problems = {i: errors for i, r in enumerate(records) if (errors := model.checker.errors(r))}
    if problems:
        raise InvalidRequestError(json.dumps({"invalid_records": problems}))
    (probabilities,) = model.session.run([PROBABILITIES_OUTPUT], onnx_feed(records, contract))
    return [float(row[1]) for row in probabilities]


def output_fn(scores: list[float], accept: str = JSON) -> tuple[str, str]:
    if accept not in (JSON, "*/*"):
        raise InvalidRequestError(f"cannot answer in {accept!r}; accept {JSON}")
    return json.dumps({"predictions": [{"score": s} for s in scores]}), JSON
