"""Shadow isolation: champion requests while a very slow candidate loads and scores in shadow.

The conditions of `make demo`'s last promotion, in-process: the real :class:`ScoringEngine` and
:class:`ModelCache` on in-memory fakes, the champion a trained Telco model, the candidate the same model
made very slow (:func:`local.demo.candidates.slowed`) and in shadow, its file downloading for
``--download-seconds`` (then its session built: the load), the deployment state re-read every
``deployment_cache_seconds`` (2 s for Telco), and product batches (250 records, a 0.1 s pause) sent one
after another as the demo's traffic does. Each run is a fresh process's cache: the first request starts
the shadow thread's load, and requests go on until ``--seconds-after-load`` after it ended.

Reports, per run and overall, the champion's response times (max, p99) against the candidate's load time (from
the first request, which starts it, to its session ready: download and session creation);
the champion must never wait on the load (max well under it). Run: ``python -m bench.shadow_isolation``;
writes bench/results/shadow_isolation.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "shadow_isolation.json"
USECASE = "telco_churn"


def _p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else 0.0


def one_run(model: Any, slow_onnx: bytes, *, download_seconds: float, after_load: float, batch: int) -> dict[str, Any]:
    from shared.deployment.state import DeploymentState
    from shared.scoring.engine import ScoringEngine
    from shared.scoring.models import ModelCache
    from tests.scoring_fakes import InMemoryDeployments, SlowModelFiles

    usecase = model.usecase
    champion = model.ref(version=1, run_id="run-1")
    candidate = model.ref(version=3, run_id="demo-slow").model_copy(
        update={"onnx_sha256": hashlib.sha256(slow_onnx).hexdigest()}
    )
    state = DeploymentState(usecase=USECASE, champion=champion, challenger=candidate, shadow=True, revision=1)
    deployments = InMemoryDeployments(state)
    files = SlowModelFiles(
        {champion.onnx_key: model.onnx, candidate.onnx_key: slow_onnx},
        slow_keys={candidate.onnx_key},
        seconds=download_seconds,
    )
    cache = ModelCache(
        usecase=USECASE,
        deployments=deployments,
        files=files,
        bucket="lake",
        refresh_seconds=usecase.serving.deployment_cache_seconds,
        feature_names=frozenset(c.name for c in usecase.contract.features),
    )
    cache.model(champion)  # the champion was serving before the promotion
    engine = ScoringEngine(usecase=usecase, models=cache, logger=_Quiet())
    records = [{k: v for k, v in r.items() if k != usecase.contract.label} for r in model.records]

    loaded_at: list[float] = []

    def watch_load() -> None:
        cache.model(candidate)  # waits for the shadow thread's load (one load: the same lock)
        loaded_at.append(time.perf_counter())

    latencies: list[float] = []
    started = time.perf_counter()
    watcher: threading.Thread | None = None
    offset, index = 0, 0
    while not loaded_at or time.perf_counter() < loaded_at[0] + after_load:
        body = [records[(offset + i) % len(records)] for i in range(batch)]
        offset += batch
        begun = time.perf_counter()
        outcome = engine.predict(body, request_id=f"req-{index}")
        latencies.append(time.perf_counter() - begun)
        if outcome.variants != ("champion",):
            raise RuntimeError(f"unexpected variants {outcome.variants}")
        if watcher is None and files.started.wait(5):
            watcher = threading.Thread(target=watch_load, daemon=True)
            watcher.start()
        index += 1
        time.sleep(0.1)
    load_seconds = loaded_at[0] - started
    return {
        "requests": len(latencies),
        "state_reads": deployments.reads,
        "candidate_downloads": files.reads_by_key.get(candidate.onnx_key, 0),
        "candidate_load_s": round(load_seconds, 3),
        "champion_max_s": round(max(latencies), 3),
        "champion_p99_s": round(_p99(latencies), 3),
        "latencies": latencies,
    }


class _Quiet:
    """A logger that drops the engine's shadow warnings (the slow candidate misses its bound on purpose)."""

    def warning(self, *args: Any, **kwargs: Any) -> None:
        pass

    def info(self, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--download-seconds", type=float, default=3.0)
    parser.add_argument("--seconds-after-load", type=float, default=2.5)
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args(argv)

    from local.demo.candidates import slowed
    from tests.scoring_model import trained_model

    model = trained_model()
    slow_onnx = slowed(model.onnx)
    runs = [
        one_run(
            model,
            slow_onnx,
            download_seconds=args.download_seconds,
            after_load=args.seconds_after_load,
            batch=args.batch,
        )
        for _ in range(args.runs)
    ]
    every = [latency for run in runs for latency in run.pop("latencies")]
    overall: dict[str, Any] = {
        "requests": len(every),
        "champion_max_s": round(max(every), 3),
        "champion_p99_s": round(_p99(every), 3),
        "candidate_load_min_s": min(run["candidate_load_s"] for run in runs),
        "candidate_downloads_max": max(run["candidate_downloads"] for run in runs),
    }
    report: dict[str, Any] = {
        "runs": runs,
        "overall": overall,
        "settings": vars(args),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for number, run in enumerate(runs, 1):
        print(
            f"run {number:2}: {run['requests']:3} requests, candidate load {run['candidate_load_s']:.2f} s, "
            f"champion max {run['champion_max_s']:.3f} s, p99 {run['champion_p99_s']:.3f} s"
        )
    print(
        f"overall: {overall['requests']} requests, champion max {overall['champion_max_s']:.3f} s, "
        f"p99 {overall['champion_p99_s']:.3f} s; candidate load ≥ {overall['candidate_load_min_s']:.2f} s, "
        f"downloaded at most {overall['candidate_downloads_max']} time(s) a run"
    )
    return report


if __name__ == "__main__":
    main()
