"""On a machine with a CUDA device: the endpoint's CUDA session scores as the CPU one does.

Marked ``gpu``: ``tests/conftest.py`` skips it, saying why, where onnxruntime has no CUDA provider or
no GPU is visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.scoring.execution_provider import CPU_PROVIDER, CUDA_PROVIDER
from shared.usecase.features import onnx_feed
from tests.scoring_model import trained_model
from training import inference

TELCO = Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml"
TOLERANCE = 1e-5


@pytest.mark.gpu
def test_the_cuda_session_scores_as_the_cpu_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    # Given a small Telco model loaded by the endpoint's own code on a GPU machine
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(TELCO))
    model = trained_model()
    (tmp_path / "model.onnx").write_bytes(model.onnx)
    served = inference.model_fn(str(tmp_path))
    contract = served.usecase.contract
    records = [{k: v for k, v in r.items() if k in contract.names} for r in model.records[:2000]]
    # Then it serves on CUDA (not a silent fallback)
    assert served.serving.provider == CUDA_PROVIDER, served.serving.reason
    # And its scores equal a CPU session's within 1e-5
    on_gpu = np.asarray(inference.predict_fn(records, served).scores)
    cpu = ort.InferenceSession(model.onnx, providers=[CPU_PROVIDER])
    (probabilities,) = cpu.run([inference.PROBABILITIES_OUTPUT], onnx_feed(records, contract))
    on_cpu = np.asarray(probabilities)[:, 1]
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=TOLERANCE)
