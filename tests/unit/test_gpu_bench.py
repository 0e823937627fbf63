"""The GPU benchmark's verdicts: the crossover batch size, and no figures without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

from bench.gpu_bench import Throughput, crossover, run
from shared.scoring.execution_provider import CPU_PROVIDER, CUDA_PROVIDER, GpuVisibility


def test_the_crossover_is_where_the_gpu_wins_from_then_on() -> None:
    # Given the GPU losing at small batches and winning from 10,000 rows on
    points = [
        Throughput(1, 900.0, 100.0),
        Throughput(100, 9e4, 5e4),
        Throughput(10_000, 1e6, 3e6),
        Throughput(100_000, 1e6, 9e6),
    ]
    assert crossover(points) == 10_000
    # And a GPU that wins once at a small batch, then loses, does not pay from there
    assert crossover([Throughput(1, 1.0, 2.0), Throughput(100, 2.0, 1.0), Throughput(10_000, 1.0, 5.0)]) == 10_000
    # And one that never wins at the largest batch has no crossover
    assert crossover([Throughput(1, 1.0, 2.0), Throughput(100_000, 5.0, 4.0)]) is None


def test_without_a_gpu_the_results_say_so_and_hold_no_figures(tmp_path: Path) -> None:
    # Given a machine whose onnxruntime has the CUDA provider but that shows no GPU
    out = tmp_path / "gpu.json"
    no_gpu = GpuVisibility(visible=False, detail="no /dev/nvidia[0-9]* device file")
    # When the benchmark runs
    results = run(out=out, gpu=no_gpu, available_providers=[CUDA_PROVIDER, CPU_PROVIDER])
    # Then the file says no GPU was found and why, and measures nothing
    written = json.loads(out.read_text())
    assert written == results
    assert written["gpu_found"] is False
    assert written["reason"].startswith("no GPU found: no GPU visible (no /dev/nvidia")
    assert "training" not in written
    assert "scoring" not in written
