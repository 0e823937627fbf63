"""CPU vs GPU on one machine: XGBoost training time, and ONNX scoring throughput by batch size.

What a heavy use case buys with its GPU instance, measured side by side on the same machine:

* training: ``xgboost.XGBClassifier`` on a synthetic ``rows`` x 50 set (5,000,000 rows by default),
  ``device="cpu"`` vs ``device="cuda"``, the same hyperparameters, wall-clock time of ``fit``;
* scoring: that model exported to ONNX (onnxmltools) and run by onnxruntime with the
  ``CUDAExecutionProvider`` vs the ``CPUExecutionProvider`` at batch sizes 1, 100, 10,000 and 100,000:
  the median of ``repeats`` timed runs after a warm-up, as rows per second (host arrays in and out, as
  an endpoint sees them, so the copies to and from the GPU are counted);
* the crossover: the smallest batch size from which the CUDA provider scores faster at that size and
  every larger one measured (``null`` when it never does), and the largest CUDA-vs-CPU score difference.

Without a GPU (no device visible, or onnxruntime without its CUDA provider) it writes a results file that
says so and why, and measures nothing: no CPU-only figure is passed off as a comparison.

Run: ``python -m bench.gpu_bench`` (``--rows 200000`` for a quick run); results in
``bench/results/gpu.json``. Needs ``xgboost``, ``onnxmltools`` and ``onnxruntime-gpu`` on the GPU machine.
``make bench`` calls it too: there it costs a device probe when no GPU is present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from shared.scoring.execution_provider import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    GpuVisibility,
    choose_providers,
    probe_gpu,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gpu.json"
ROWS = 5_000_000
FEATURES = 50
BATCH_SIZES = (1, 100, 10_000, 100_000)
REPEATS = 7
SEED = 13
HYPERPARAMETERS: dict[str, Any] = {"n_estimators": 200, "max_depth": 8, "learning_rate": 0.1, "tree_method": "hist"}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Throughput:
    batch_size: int
    cpu_rows_per_s: float
    cuda_rows_per_s: float

    @property
    def cuda_over_cpu(self) -> float:
        return self.cuda_rows_per_s / self.cpu_rows_per_s


def crossover(throughputs: Sequence[Throughput]) -> int | None:
    """The smallest batch size from which CUDA is faster at it and at every larger size (None if never)."""
    found: int | None = None
    for point in sorted(throughputs, key=lambda t: t.batch_size, reverse=True):
        if point.cuda_rows_per_s <= point.cpu_rows_per_s:
            break
        found = point.batch_size
    return found


def no_gpu_reason(gpu: GpuVisibility, available_providers: Sequence[str]) -> str | None:
    """Why this machine cannot compare (None when it can): the endpoint's own provider choice."""
    choice = choose_providers(available_providers, gpu)
    return None if choice.on_gpu else choice.reason


def gpu_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    done = subprocess.run(
        [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def synthetic_set(rows: int, features: int = FEATURES, seed: int = SEED) -> tuple[Any, Any]:
    """Float32 features and a 0/1 label that depends on them non-linearly (trees have something to learn)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    weights = rng.standard_normal(features).astype(np.float32)
    logit = x @ weights / np.sqrt(features) + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1]
    y = (logit + 0.3 * rng.standard_normal(rows).astype(np.float32) > 0).astype(np.int8)
    return x, y


def train(x: Any, y: Any, device: str) -> tuple[Any, float]:
    from xgboost import XGBClassifier

    model = XGBClassifier(**HYPERPARAMETERS, device=device, random_state=SEED)
    started = time.perf_counter()
    model.fit(x, y)
    return model, time.perf_counter() - started


def to_onnx(model: Any, features: int = FEATURES) -> bytes:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    onnx_model = convert_xgboost(model, initial_types=[("features", FloatTensorType([None, features]))])
    return bytes(onnx_model.SerializeToString())


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: CUDA kernels, memory arenas
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def scoring(onnx: bytes, x: Any, batch_sizes: Sequence[int], repeats: int) -> tuple[list[Throughput], float]:
    """Rows per second per provider and batch size, and the largest CUDA-vs-CPU probability difference."""
    import numpy as np
    import onnxruntime as ort

    sessions = {
        p: ort.InferenceSession(onnx, providers=[p] if p == CPU_PROVIDER else [p, CPU_PROVIDER])
        for p in (CPU_PROVIDER, CUDA_PROVIDER)
    }
    if sessions[CUDA_PROVIDER].get_providers()[0] != CUDA_PROVIDER:
        raise RuntimeError("onnxruntime dropped the CUDA provider at load (CUDA or cuDNN libraries missing)")
    name = sessions[CPU_PROVIDER].get_inputs()[0].name
    probabilities = sessions[CPU_PROVIDER].get_outputs()[-1].name
    points = []
    for size in batch_sizes:
        batch = np.ascontiguousarray(x[:size])
        seconds = {
            provider: median_seconds(partial(session.run, None, {name: batch}), repeats)
            for provider, session in sessions.items()
        }
        points.append(Throughput(size, size / seconds[CPU_PROVIDER], size / seconds[CUDA_PROVIDER]))
    largest = np.ascontiguousarray(x[: max(batch_sizes)])
    on_cpu, on_cuda = (np.asarray(s.run([probabilities], {name: largest})[0]) for s in sessions.values())
    return points, float(np.max(np.abs(on_cpu - on_cuda)))


def measure(rows: int, batch_sizes: Sequence[int], repeats: int) -> dict[str, Any]:
    x, y = synthetic_set(rows)
    trained = {device: train(x, y, device) for device in DEVICES}
    training = {f"{device}_seconds": round(seconds, 3) for device, (_, seconds) in trained.items()}
    training["cpu_over_cuda"] = round(trained["cpu"][1] / trained["cuda"][1], 2)
    points, max_difference = scoring(to_onnx(trained["cuda"][0]), x, batch_sizes, repeats)
    return {
        "training": {"rows": rows, "features": FEATURES, "hyperparameters": HYPERPARAMETERS, **training},
        "scoring": {
            "repeats": repeats,
            "statistic": "median",
            "by_batch_size": [
                {
                    "batch_size": p.batch_size,
                    "cpu_rows_per_s": round(p.cpu_rows_per_s, 1),
                    "cuda_rows_per_s": round(p.cuda_rows_per_s, 1),
                    "cuda_over_cpu": round(p.cuda_over_cpu, 3),
                }
                for p in points
            ],
            "crossover_batch_size": crossover(points),
            "max_abs_score_difference": max_difference,
        },
    }


def run(
    *,
    rows: int = ROWS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    repeats: int = REPEATS,
    out: Path = RESULTS,
    gpu: GpuVisibility | None = None,
    available_providers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Measure (or record why not) and write ``out``."""
    if available_providers is None:
        import onnxruntime as ort

        available_providers = ort.get_available_providers()
    gpu = gpu or probe_gpu()
    reason = no_gpu_reason(gpu, available_providers)
    results: dict[str, Any] = {
        "benchmark": "gpu",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "gpu": gpu_name() if reason is None else None,
        },
        "gpu_found": reason is None,
    }
    if reason is not None:
        results["reason"] = f"no GPU found: {reason}; nothing was measured"
    else:
        results.update(measure(rows, batch_sizes, repeats))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the synthetic training set (default 5M)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per batch size (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    batch_sizes = tuple(size for size in BATCH_SIZES if size <= args.rows)
    results = run(rows=args.rows, batch_sizes=batch_sizes, repeats=args.repeats, out=args.out)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
