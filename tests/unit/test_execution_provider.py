"""Which execution provider a heavy endpoint serves on, decided with fakes: no GPU needed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shared.scoring.execution_provider import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    CUDA_PROVIDER_FAILED,
    NO_CUDA_PROVIDER,
    NO_GPU_VISIBLE,
    GpuVisibility,
    choose_providers,
    probe_gpu,
)
from shared.scoring.telemetry import DIMENSION_PROVIDER, MODEL_LOADS, PROVIDER_REASON
from tests.scoring_model import trained_model
from training import inference

TELCO = Path(__file__).resolve().parents[2] / "usecases" / "telco_churn.toml"
GPU_RUNTIME = ("TensorrtExecutionProvider", CUDA_PROVIDER, CPU_PROVIDER)
CPU_RUNTIME = (CPU_PROVIDER,)
ONE_GPU = GpuVisibility(visible=True, detail="/dev/nvidia0")
NO_GPU = GpuVisibility(visible=False, detail="no /dev/nvidia[0-9]* device file")


def test_a_gpu_runtime_on_a_gpu_machine_serves_on_cuda_then_cpu() -> None:
    choice = choose_providers(GPU_RUNTIME, ONE_GPU)
    assert choice.providers == (CUDA_PROVIDER, CPU_PROVIDER)
    assert choice.on_gpu
    assert "/dev/nvidia0" in choice.reason


def test_a_cpu_only_runtime_serves_on_the_cpu_even_with_a_gpu() -> None:
    choice = choose_providers(CPU_RUNTIME, ONE_GPU)
    assert (choice.providers, choice.reason) == ((CPU_PROVIDER,), NO_CUDA_PROVIDER)


def test_a_gpu_runtime_without_a_visible_gpu_falls_back_with_why() -> None:
    choice = choose_providers(GPU_RUNTIME, NO_GPU)
    assert choice.providers == (CPU_PROVIDER,)
    assert choice.reason == f"{NO_GPU_VISIBLE} (no /dev/nvidia[0-9]* device file)"


def test_the_probe_finds_the_drivers_device_files(tmp_path: Path) -> None:
    # Given a /dev with the driver's control file and one GPU
    (tmp_path / "nvidiactl").touch()
    (tmp_path / "nvidia-uvm").touch()
    assert not probe_gpu(device_dir=tmp_path, environ={}).visible
    (tmp_path / "nvidia0").touch()
    # Then the GPU is visible, unless CUDA_VISIBLE_DEVICES hides it
    assert probe_gpu(device_dir=tmp_path, environ={}) == GpuVisibility(visible=True, detail=f"{tmp_path}/nvidia0")
    hidden = probe_gpu(device_dir=tmp_path, environ={"CUDA_VISIBLE_DEVICES": "-1"})
    assert not hidden.visible
    assert "CUDA_VISIBLE_DEVICES='-1'" in hidden.detail


class SessionOn:
    """An onnxruntime session stand-in that reports the providers it took (and scores nothing)."""

    def __init__(self, taken: tuple[str, ...]) -> None:
        self.taken = taken
        self.asked: list[str] = []

    def __call__(self, path: str, providers: list[str]) -> SessionOn:
        assert path.endswith("model.onnx")
        self.asked = providers
        return self

    def get_providers(self) -> list[str]:
        return list(self.taken)


@pytest.mark.parametrize(
    "machine",
    [
        (GPU_RUNTIME, ONE_GPU, (CUDA_PROVIDER, CPU_PROVIDER), CUDA_PROVIDER, "CUDA provider available"),
        (CPU_RUNTIME, ONE_GPU, (CPU_PROVIDER,), CPU_PROVIDER, NO_CUDA_PROVIDER),
        (GPU_RUNTIME, NO_GPU, (CPU_PROVIDER,), CPU_PROVIDER, NO_GPU_VISIBLE),
        # onnxruntime-gpu whose CUDA libraries fail to load drops CUDA by itself
        (GPU_RUNTIME, ONE_GPU, (CPU_PROVIDER,), CPU_PROVIDER, CUDA_PROVIDER_FAILED),
    ],
)
def test_the_endpoint_logs_emits_and_answers_with_the_provider_that_serves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    machine: tuple[tuple[str, ...], GpuVisibility, tuple[str, ...], str, str],
) -> None:
    runtime, gpu, taken, provider, reason = machine
    # Given an endpoint loading its model on a machine as described
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(TELCO))
    session, metrics = SessionOn(taken), io.StringIO()
    # When the model loads
    model = inference.load_model(
        str(tmp_path), available_providers=runtime, gpu=gpu, session_factory=session, metrics_out=metrics
    )
    # Then it asked for CUDA only when the runtime had it and a GPU was visible
    assert session.asked[0] == (CUDA_PROVIDER if runtime == GPU_RUNTIME and gpu.visible else CPU_PROVIDER)
    # And the provider that serves, and why, is in its log and its ModelLoads metric
    assert model.serving.provider == provider
    assert reason in model.serving.reason
    assert f"on {provider}: " in caplog.text
    assert reason in caplog.text
    (line,) = metrics.getvalue().splitlines()
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert [m["Name"] for m in directive["Metrics"]] == [MODEL_LOADS]
    assert directive["Dimensions"] == [["usecase", DIMENSION_PROVIDER]]
    assert (document[DIMENSION_PROVIDER], document[MODEL_LOADS]) == (provider, 1)
    assert reason in document[PROVIDER_REASON]


def test_a_real_session_answers_with_the_provider_that_scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a small Telco model loaded on this machine as SageMaker loads it
    monkeypatch.setenv("SLUICE_USECASE_FILE", str(TELCO))
    model_file = trained_model()
    (tmp_path / "model.onnx").write_bytes(model_file.onnx)
    model = inference.model_fn(str(tmp_path))
    # When records are scored
    records = [{k: v for k, v in r.items() if k in model.usecase.contract.names} for r in model_file.records[:2]]
    body, _ = inference.output_fn(inference.predict_fn(records, model))
    # Then the answer names the provider the session really runs on
    assert json.loads(body)["provider"] == model.serving.provider == model.session.get_providers()[0]
