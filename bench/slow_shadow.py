"""The slow-shadow stage of `make demo`, ten times on one embedded cloud: no scoring request may fail.

``python -m bench.slow_shadow --runs 10`` launches the embedded cloud once (as `make demo` does), ingests the
use case's sample data, trains and deploys the champion, starts synthetic traffic over HTTP (batches of 250
records, as the demo's slow-shadow stage sends them), then, ``--runs`` times: registers a very slow copy of
the champion (:func:`local.demo.candidates.slowed`), promotes it with ``python -m cli promote`` through the
offline gate, the replay (which scores the logged predictions with the slow model inside the promotion
function) and into shadow, and waits until it is rolled back (or the promotion ends otherwise). For each run
it records whether the candidate reached shadow (rolled back by its alarm; a run the offline gate
refuses, its latency check failing on a loaded machine, is retried, up to twice ``--runs`` runs in all), the
requests sent, the failed ones (anything but HTTP 200, a client timeout of 30 s included),
the maximum and p99 latency, and writes them to ``bench/results/slow_shadow.json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.assembly import usecase_file
from local.demo.__main__ import (
    api_key,
    as_record,
    deployment_state,
    newest_package,
    predict_url,
    run_cli,
    train,
    wait_for_manifests,
)
from local.demo.candidates import register_copy, slowed
from local.demo.observe import logged_predictions
from local.demo.sample_data import load_sample_rows, to_csv
from local.demo.traffic import post_json
from local.launcher import ROOT, RunningCloud, launch
from shared.usecase.settings import UseCase, load_usecase

RESULTS = ROOT / "bench" / "results" / "slow_shadow.json"


@dataclass(frozen=True)
class Answer:
    sent_at: float
    latency_ms: float
    failure: str | None


@dataclass
class TimedTraffic:
    """Batches of records posted back to back (``pause_s`` apart), each answer timed."""

    url: str
    key: str
    records: list[dict[str, Any]]
    batch_size: int = 250
    pause_s: float = 0.1
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        offset = 0
        while not self._stop.is_set():
            batch = [self.records[(offset + i) % len(self.records)] for i in range(self.batch_size)]
            offset = (offset + self.batch_size) % len(self.records)
            sent = time.monotonic()
            try:
                status, body = post_json(self.url, {"records": batch}, self.key)
            except OSError as exc:  # a client timeout or a refused connection: failed all the same
                status, body = 0, {"message": str(exc)}
            latency = (time.monotonic() - sent) * 1000
            failure = None if status == 200 else f"HTTP {status}: {str(body)[:200]}"
            with self._lock:
                self.answers.append(Answer(sent, latency, failure))
            self._stop.wait(self.pause_s)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.sent_at < end]

    def stop(self) -> None:
        self._stop.set()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


def prepare(cloud: RunningCloud, usecase: UseCase, usecase_path: Path, timeout: float) -> list[dict[str, str]]:
    """Sample data ingested, a champion trained and deployed (as the demo's first stages do)."""
    rows = load_sample_rows(usecase)
    key = f"incoming/{usecase.name}.csv"
    cloud.client("s3").put_object(Bucket=cloud.stack_outputs["RawBucketName"], Key=key, Body=to_csv(rows))
    wait_for_manifests(cloud, usecase, [key], timeout)
    train(cloud, timeout)
    deployed = run_cli(cloud, usecase_path, "deploy", "1")
    if deployed.returncode != 0:
        raise SystemExit(f"deploy failed: {deployed.stderr.strip()}")
    time.sleep(usecase.serving.deployment_cache_seconds + 1)
    return rows


def one_run(
    cloud: RunningCloud, usecase: UseCase, usecase_path: Path, traffic: TimedTraffic, *, onnx: bytes, index: int
) -> dict[str, Any]:
    source = newest_package(cloud)
    candidate = register_copy(
        sagemaker=cloud.client("sagemaker"),
        s3=cloud.client("s3"),
        source_package_arn=source["ModelPackageArn"],
        onnx_model=onnx,
        run_id=f"bench-slow-{index}-{time.strftime('%Y%m%d-%H%M%S')}",
        description="bench.slow_shadow: the champion made very slow (same scores)",
    )
    version = int(candidate["ModelPackageVersion"])
    started = time.monotonic()
    promoted = run_cli(cloud, usecase_path, "promote", str(version))
    said = (promoted.stdout + promoted.stderr).strip().splitlines()
    deadline = time.monotonic() + 300
    while (state := deployment_state(cloud, usecase)).challenger is not None or state.stage != "idle":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(usecase.serving.deployment_cache_seconds + 1)
    ended = time.monotonic()
    answers = traffic.between(started, ended)
    latencies = [a.latency_ms for a in answers]
    failures = [a.failure for a in answers if a.failure]
    return {
        "run": index,
        "candidate_version": version,
        "cli_exit": promoted.returncode,
        "outcome": f"{state.stage}; champion v{state.champion.version}; by {state.updated_by}",
        "reached_shadow": str(state.updated_by).startswith("rollback"),
        "cli_said": said[-1][:300] if said else "",
        "seconds": round(ended - started, 1),
        "requests": len(answers),
        "failed": len(failures),
        "failures": failures[:5],
        "max_latency_ms": round(max(latencies, default=0.0), 1),
        "p99_latency_ms": round(p99(latencies), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_shadow", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--usecase", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for ingest and training")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    path = usecase_file(args.usecase)
    usecase = load_usecase(path)
    local = ROOT / ".local" / "bench-slow-shadow"
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {platform.python_version()}", "runs": []}
    with launch(usecase=path, outputs_file=local / "outputs.json", log_file=local / "cloud.log") as cloud:
        rows = prepare(cloud, usecase, path, args.timeout)
        records = [as_record(usecase, row) for row in rows]
        traffic = TimedTraffic(url=predict_url(cloud, usecase), key=api_key(cloud), records=records)
        thread = threading.Thread(target=traffic.run, name="bench-traffic", daemon=True)
        thread.start()
        try:
            while logged_predictions(cloud, usecase) < usecase.promotion.min_samples:  # the replay's input
                time.sleep(1.0)
            champion = newest_package(cloud)
            onnx = (
                cloud.client("s3")
                .get_object(
                    Bucket=cloud.stack_outputs["LakeBucketName"],
                    Key=champion["CustomerMetadataProperties"]["onnx_s3_key"],
                )["Body"]
                .read()
            )
            slow = slowed(onnx)
            index = 0
            while sum(r["reached_shadow"] for r in report["runs"]) < args.runs and index < 2 * args.runs:
                index += 1  # a run the offline gate refuses (its latency check on a loaded machine) is retried
                result = one_run(cloud, usecase, path, traffic, onnx=slow, index=index)
                report["runs"].append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "failures"}), flush=True)
                report["total"] = {
                    "runs": len(report["runs"]),
                    "reached_shadow": sum(r["reached_shadow"] for r in report["runs"]),
                    "requests": sum(r["requests"] for r in report["runs"]),
                    "failed": sum(r["failed"] for r in report["runs"]),
                    "max_latency_ms": max(r["max_latency_ms"] for r in report["runs"]),
                }
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(report, indent=2) + "\n")
        finally:
            traffic.stop()
            thread.join(timeout=60)
    return 1 if report.get("total", {}).get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
