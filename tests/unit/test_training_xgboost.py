"""XGBoost: hyperparameters checked with the use case, the device chosen (and why), ONNX export within parity."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from shared.usecase.settings import Contract, ModelSettings, UseCase
from tests.unit.conftest import REPO, telco_frame
from tests.unit.training_sample import telco_channel
from tests.usecase_variants import with_xgboost
from training import inference, train
from training.device import CPU, CUDA, TrainingDevice, training_device
from training.exceptions import ModelConfigError
from training.export import PARITY_TOLERANCE, export_model, onnx_feed, onnx_probabilities, parity_max_abs_diff
from training.model import build_pipeline, feature_frame, label_vector, make_estimator

SEEDS = range(20)
SMALL = {"n_estimators": 30, "max_depth": 4, "learning_rate": 0.3}

# --- the use-case file ------------------------------------------------------------------------


def test_xgboost_hyperparameters_are_checked_when_the_use_case_is_read() -> None:
    # Given XGBoost settings naming one hyperparameter it does not take here (booster: only trees convert)
    # When / Then the file fails validation, naming it
    with pytest.raises(ValidationError, match=r"\['booster'\] are not accepted by 'xgboost'"):
        ModelSettings(estimator="xgboost", hyperparameters={"n_estimators": 10, "booster": "gblinear"})


@pytest.mark.parametrize("hyperparameters", [{"max_depth": -1}, {"learning_rate": "fast"}, {"subsample": 2.0}])
def test_an_invalid_xgboost_value_is_rejected_before_training(hyperparameters: dict[str, Any]) -> None:
    # Given names XGBoost takes, with values it refuses
    settings = ModelSettings(estimator="xgboost", hyperparameters=hyperparameters)
    # When / Then building the estimator (configuration time) refuses them
    with pytest.raises(ModelConfigError, match=r"xgboost hyperparameters .* are invalid"):
        make_estimator(settings)


def test_the_estimator_trains_histograms_on_the_device_it_is_given() -> None:
    settings = ModelSettings(estimator="xgboost", hyperparameters={"n_estimators": 7})
    params = make_estimator(settings, device=CUDA).get_params()
    assert (params["device"], params["tree_method"], params["objective"]) == (CUDA, "hist", "binary:logistic")
    assert params["n_estimators"] == 7


# --- the device --------------------------------------------------------------------------------


def _device(
    *,
    use_cuda: bool = True,
    environ: Mapping[str, str] | None = None,
    gpus: tuple[str, ...] = ("GPU 0: NVIDIA H200 (UUID: GPU-1)",),
    cuda_error: str | None = None,
) -> TrainingDevice:
    return training_device(
        environ=environ or {},
        build_info=lambda: {"USE_CUDA": use_cuda},
        gpus=lambda: list(gpus),
        cuda_error=lambda: cuda_error,
    )


def test_a_cuda_build_that_sees_a_working_gpu_trains_on_it() -> None:
    chosen = _device()
    assert chosen.device == CUDA
    assert "NVIDIA H200" in chosen.reason


@pytest.mark.parametrize(
    ("situation", "reason"),
    [
        ({"use_cuda": False}, "no CUDA support"),
        ({"environ": {"CUDA_VISIBLE_DEVICES": ""}}, "CUDA_VISIBLE_DEVICES='' hides every GPU"),
        ({"environ": {"CUDA_VISIBLE_DEVICES": "-1"}}, "hides every GPU"),
        ({"gpus": ()}, "nvidia-smi lists no GPU"),
        ({"cuda_error": "XGBoostError: no kernel image"}, "a test fit on cuda failed: XGBoostError: no kernel image"),
    ],
)
def test_without_a_usable_gpu_it_trains_on_the_cpu_and_says_why(situation: dict[str, Any], reason: str) -> None:
    chosen = _device(**situation)
    assert chosen.device == CPU
    assert reason in chosen.reason


# --- parity over seeds: ties at the float32 thresholds ---------------------------------------------

GRID_CONTRACT = Contract.model_validate(
    {
        "version": "1.0.0",
        "entity_id": "id",
        "label": "label",
        "positive_class": 1,
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "label", "type": "int", "allowed": [0, 1]},
            {"name": "steps", "type": "int", "nullable": True},
            {"name": "ratio", "type": "float", "nullable": True},
            {"name": "amount", "type": "float"},
            {"name": "plan", "type": "category", "allowed": ["a", "b", "c"], "nullable": True},
        ],
    }
)


def _grid_rows(seed: int, n: int) -> pd.DataFrame:
    """Values on coarse grids (many ties), thirds and tenths that float32 cannot hold exactly, and nulls."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 12, n).astype(float)
    ratio = np.round(rng.integers(0, 30, n) / 3.0, 6)
    amount = rng.integers(0, 500, n) / 10.0
    plan = rng.choice(np.array(["a", "b", "c", None], dtype=object), n)
    steps[rng.random(n) < 0.05] = np.nan
    ratio[rng.random(n) < 0.05] = np.nan
    logit = 0.4 * steps - 0.7 * np.nan_to_num(ratio, nan=4.0) + 0.05 * amount + (plan == "b") - 1.0
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "label": label,
            "steps": steps,
            "ratio": ratio,
            "amount": amount,
            "plan": plan,
        }
    )


def _at_thresholds(pipeline: Any, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numeric values sit exactly on, just under and just over the model's own float32 split values."""
    trees = pipeline.named_steps["estimator"].get_booster().trees_to_dataframe()
    splits = trees.dropna(subset=["Split"])
    numeric = ["steps", "ratio", "amount"]
    names = {f"f{i}": name for i, name in enumerate(numeric)}  # the numeric columns come first, unscaled
    probes: list[pd.Series] = []
    for feature, value in zip(splits["Feature"], splits["Split"], strict=True):
        if feature not in names:
            continue
        exact = np.float32(value)
        for nudged in (np.nextafter(exact, np.float32(-np.inf)), exact, np.nextafter(exact, np.float32(np.inf))):
            row = rows.iloc[len(probes) % len(rows)].copy()
            row[names[feature]] = float(nudged)
            probes.append(row)
    assert probes, "the model has no numeric split to probe"
    return pd.DataFrame(probes)


def test_the_onnx_export_agrees_with_xgboost_over_seeds_even_on_its_thresholds() -> None:
    differences = []
    for seed in SEEDS:
        # Given a model trained on tie-heavy data of one seed
        rows = _grid_rows(seed, 600)
        settings = ModelSettings(estimator="xgboost", hyperparameters={**SMALL, "random_state": seed})
        pipeline = build_pipeline(GRID_CONTRACT, make_estimator(settings))
        pipeline.fit(feature_frame(rows, GRID_CONTRACT), label_vector(rows, GRID_CONTRACT))
        # When it is exported and gated on a fresh holdout of the same seed
        holdout = feature_frame(_grid_rows(seed + 1000, 400), GRID_CONTRACT)
        exported = export_model(pipeline, GRID_CONTRACT, holdout)
        # Then it passes, and also on rows set exactly on (and one float32 step around) every split value
        probes = feature_frame(_at_thresholds(pipeline, rows), GRID_CONTRACT)
        on_thresholds = parity_max_abs_diff(pipeline, exported.model, probes, GRID_CONTRACT)
        differences.append(max(exported.parity_max_abs_diff, on_thresholds))
    assert max(differences) <= PARITY_TOLERANCE, differences


# --- the training job -----------------------------------------------------------------------------


def test_the_telco_use_case_switched_to_xgboost_by_its_file_trains_within_parity_and_is_served(
    tmp_path: Path, telco: UseCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the Telco training set and its use-case file, switched to XGBoost in the file alone
    channel, _ = telco_channel(telco, tmp_path)
    usecase_file = tmp_path / "usecase.toml"
    usecase_file.write_text(with_xgboost((REPO / "usecases" / "telco_churn.toml").read_text()))

    # When the training entry point runs it
    model_dir = tmp_path / "model"
    code = train.main(
        [
            "--train", str(channel),
            "--model-dir", str(model_dir),
            "--output-data-dir", "",
            "--usecase-file", str(usecase_file),
            "--failure-file", str(tmp_path / "failure"),
        ]
    )  # fmt: skip

    # Then it passes the parity gate with a useful model
    assert code == 0, (tmp_path / "failure").read_text()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    lineage = json.loads((model_dir / "lineage.json").read_text())
    assert metrics["estimator"] == "xgboost"
    assert metrics["parity_ok"] is True
    assert metrics["parity"]["max_abs_diff"] <= PARITY_TOLERANCE
    assert metrics["auc"] > 0.75
    # And metrics and lineage say which device trained it and why (the one this machine offers)
    expected = training_device(environ={})
    assert metrics["training_device"]["device"] == lineage["training_device"]["device"] == expected.device
    assert lineage["training_device"]["reason"]
    assert lineage["hyperparameters"]["n_estimators"] == 60
    assert lineage["libraries"]["xgboost"] != "unknown"
    assert lineage["libraries"]["onnxmltools"] != "unknown"

    # And the heavy endpoint's handlers serve the exported model as the trained model scores its holdout
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(usecase_file))
    rows = telco_frame().head(50)
    rows = rows.astype(object).where(rows.notna(), None)
    records = [{k: v for k, v in r.items() if k in telco.contract.names} for r in rows.to_dict(orient="records")]
    loaded = inference.model_fn(str(model_dir))
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(json.dumps({"records": records})), loaded))
    served = np.array([prediction["score"] for prediction in json.loads(body)["predictions"]])
    model = (model_dir / "model.onnx").read_bytes()
    expected_scores = onnx_probabilities(model, onnx_feed(feature_frame(rows, telco.contract), telco.contract))[:, 1]
    np.testing.assert_allclose(served, expected_scores, atol=PARITY_TOLERANCE)
