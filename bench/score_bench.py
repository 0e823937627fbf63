"""Score benchmark: the score function in-process vs raw onnxruntime and vs a naive scikit-learn handler.

AWS is replaced by in-memory fakes (deployment state, model file, queues), so only our code, powertools
and onnxruntime are measured; the deployment cache is warm. Measures
  * one-record latency (p50/p99 over CALLS calls) of the handler on an API Gateway event, of raw
    ``session.run`` on the same model, and of a naive handler (joblib-loaded pipeline, pandas frame,
    ``predict_proba``);
  * rows/s of a 1,000-record request (records body, and the v2 columnar body) vs raw onnxruntime on the same
    1,000 rows, the three measured in interleaved rounds (:func:`interleaved`): ratios of medians, and of
    minimums (``*_by_minimum``);
  * cold start (fresh interpreter, measured inside): import + model load of the score function vs the
    naive handler's import of scikit-learn/pandas + ``joblib.load``.
Writes bench/results/score.json and prints it. Run: ``make bench``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "score.json"
CALLS = 3000
BATCH = 1000
BATCH_REPEATS = 30
INTERLEAVED_REPEATS = 300
"""Rounds of the 1,000-row comparison: each round runs the records handler, the columnar handler and raw
onnxruntime once, one after the other, so all three see the same machine load."""
COLD_REPEATS = 7
USECASE = "telco_churn"
TARGETS = {
    "p50_vs_raw_onnxruntime_max": 10.0,
    "speedup_vs_naive_min": 5.0,
    "batch_share_of_raw_min": 0.5,
    "columnar_share_of_raw_min": 0.6,
    "cold_start_share_of_naive_max": 0.3,
}


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 (powertools' log lines and EMF documents) to /dev/null while timing: writing them is still paid."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 1),
    }


def ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e3, 3)


def timed(call: Callable[[], Any], repeats: int) -> list[float]:
    for _ in range(min(50, repeats)):
        call()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def interleaved(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, measured in rounds that run every call once in turn (after a warm-up round of
    each): on a shared machine, load that comes and goes then falls on all of them alike, so their ratio
    holds even when their absolute times drift."""
    for _ in range(min(20, repeats)):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return samples


def api_event(body: dict[str, Any], request_id: str, path: str = f"/v1/{USECASE}/predict") -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"requestId": request_id, "stage": "prod", "httpMethod": "POST"},
        "pathParameters": {"proxy": path.lstrip("/")},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


V2_DATATYPES = {"int": "INT64", "float": "FP64", "bool": "BOOL"}


def infer_body(records: list[dict[str, Any]], contract: Any) -> dict[str, Any]:
    """The records as a v2 infer body: one input per column they hold."""
    names = [c.name for c in contract.columns if any(c.name in r for r in records)]
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(records)],
                "datatype": V2_DATATYPES.get(contract.column(name).type.value, "BYTES"),
                "data": [r.get(name) for r in records],
            }
            for name in names
        ]
    }


def score_function(model: Any) -> tuple[Any, Any]:
    """The score handler module, its engine built on in-memory fakes; and the champion's loaded model."""
    os.environ.update(
        {
            "LAMBDA_TASK_ROOT": str(ROOT),
            "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
            "DEPLOYMENT_TABLE": "bench-deployments",
            "LAKE_BUCKET": "bench-lake",
            "POWERTOOLS_SERVICE_NAME": "score",
            "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    from functions.score import handler
    from shared.deployment.state import DeploymentState
    from shared.scoring.engine import ScoringEngine
    from shared.scoring.models import ModelCache
    from shared.scoring.prediction_log import PredictionLog
    from tests.scoring_fakes import InMemoryDeployments, InMemoryModelFiles, RecordingSender

    ref = model.ref()
    usecase = model.usecase
    cache = ModelCache(
        usecase=USECASE,
        deployments=InMemoryDeployments(DeploymentState(usecase=USECASE, champion=ref, revision=1)),
        files=InMemoryModelFiles({ref.onnx_key: model.onnx}),
        bucket="bench-lake",
        refresh_seconds=usecase.serving.deployment_cache_seconds,
        feature_names=frozenset(c.name for c in usecase.contract.features),
    )
    sender = RecordingSender()
    engine = ScoringEngine(
        usecase=usecase,
        models=cache,
        prediction_log=PredictionLog(
            sender,
            usecase=USECASE,
            log_queue_url="https://sqs/log",
            review_queue_url="https://sqs/review",
            review=usecase.review,
            segment_columns=usecase.contract.segments,
        ),
        logger=handler.logger,
    )
    handler.service.cache_clear()
    handler.service().engine = engine  # the service's engine, replaced: no AWS client is built
    cache.warm()
    return handler, cache.champion()


def cold_start_script(kind: str, model_file: Path) -> str:
    if kind == "score":
        return (
            "import time; t=time.perf_counter()\n"
            "import functions.score.handler\n"
            "from shared.scoring.models import load_model, onnx_session\n"
            "from shared.deployment.state import ModelRef\n"
            "import hashlib, pathlib\n"
            f"data = pathlib.Path({str(model_file)!r}).read_bytes()\n"
            "ref = ModelRef(version=1, package_arn='a', run_id='r', onnx_key='k',"
            " onnx_sha256=hashlib.sha256(data).hexdigest(), threshold=0.5)\n"
            "uc = functions.score.handler.service().usecase\n"
            "load_model(ref, data, feature_names=frozenset(c.name for c in uc.contract.features),"
            " session_factory=onnx_session)\n"
            "print(time.perf_counter()-t)\n"
        )
    return (
        "import time; t=time.perf_counter()\n"
        "import json, joblib, pandas, sklearn\n"
        f"joblib.load({str(model_file)!r})\n"
        "print(time.perf_counter()-t)\n"
    )


def cold_starts(onnx_file: Path, joblib_file: Path) -> dict[str, dict[str, float]]:
    """Seconds to import and load the model, in fresh interpreters: the score function and the naive handler,
    run alternately so both see the same machine load; the minimum (noise only adds) and the median of each.

    As on AWS: tracing on (the handler's Tracer builds the X-Ray recorder). Neither side imports boto3 here,
    since both load their model file from local bytes (on AWS the score function's first S3 read, and a naive
    handler's if it read its model from S3, would add boto3's import to both). One untimed run of each first
    writes the bytecode caches, so neither side pays for compiling source.
    """
    env = {
        **{k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"},
        "AWS_LAMBDA_FUNCTION_NAME": "bench-score",
        "OMP_NUM_THREADS": "1",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "SLUICE_USECASE_FILE": "usecases/telco_churn.toml",
    }
    scripts = {"score": cold_start_script("score", onnx_file), "naive": cold_start_script("naive", joblib_file)}

    def run(kind: str, *, write_bytecode: bool) -> float:
        result = subprocess.run(
            [sys.executable, "-c", scripts[kind]],
            cwd=ROOT,
            env={**env, **({} if write_bytecode else {"PYTHONDONTWRITEBYTECODE": "1"})},
            capture_output=True,
            text=True,
            check=True,
        )
        return float(result.stdout.strip().splitlines()[-1])

    for kind in scripts:
        run(kind, write_bytecode=True)
    runs: dict[str, list[float]] = {kind: [] for kind in scripts}
    for _ in range(COLD_REPEATS):
        for kind in scripts:
            runs[kind].append(run(kind, write_bytecode=False))
    return {
        kind: {"min_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)}
        for kind, times in runs.items()
    }


def main() -> None:  # noqa: PLR0915 - one straight measurement script
    import joblib
    import numpy as np
    import pandas as pd

    from shared.usecase.features import onnx_feed
    from tests.fakes import FakeLambdaContext
    from tests.scoring_model import trained_model

    model = trained_model()
    contract = model.usecase.contract
    records = [{k: v for k, v in r.items() if k != contract.label} for r in model.records]
    handler, champion = score_function(model)
    context = FakeLambdaContext()

    one = records[0]
    events = [api_event({"record": records[i % len(records)]}, f"bench-{i}") for i in range(CALLS)]
    calls = iter(range(10**9))

    def handler_call() -> None:
        response = handler.lambda_handler(events[next(calls) % CALLS], context)
        if response["statusCode"] != 200:
            raise RuntimeError(response["body"])

    one_feed = onnx_feed([one], contract)
    session, names = champion.session, champion.input_names

    def raw_call() -> None:
        session.run(["probabilities"], {n: one_feed[n] for n in names})

    pipeline = model.pipeline
    with tempfile.TemporaryDirectory() as scratch:
        model_file = Path(scratch) / "model.joblib"
        joblib.dump(pipeline, model_file)
        onnx_file = Path(scratch) / "model.onnx"
        onnx_file.write_bytes(model.onnx)
        naive_model = joblib.load(model_file)

        def naive_call() -> None:
            body = json.loads(events[0]["body"])
            frame = pd.DataFrame([body["record"]])
            float(naive_model.predict_proba(frame)[0, 1])

        with quiet_stdout():
            handler_samples = timed(handler_call, CALLS)
        raw_samples = timed(raw_call, CALLS)
        naive_samples = timed(naive_call, max(500, CALLS // 3))

        batch_event = api_event({"records": records[:BATCH]}, "bench-batch")
        batch_feed = onnx_feed(records[:BATCH], contract)
        columnar_event = api_event(
            infer_body(records[:BATCH], contract), "bench-columnar", path=f"/v2/models/{USECASE}/infer"
        )

        def raw_batch_call() -> None:
            session.run(["probabilities"], {n: batch_feed[n] for n in names})

        def checked(event: dict[str, Any]) -> Callable[[], None]:
            def call() -> None:
                response = handler.lambda_handler(event, context)
                if response["statusCode"] != 200:
                    raise RuntimeError(f"the request was refused: {response['body'][:500]}")

            return call

        with quiet_stdout():
            rounds = interleaved(
                {"records": checked(batch_event), "columnar": checked(columnar_event), "raw": raw_batch_call},
                INTERLEAVED_REPEATS,
            )
        batch_samples, columnar_samples, raw_batch_samples = rounds["records"], rounds["columnar"], rounds["raw"]
        # where a 1,000-record request's time goes: the body decoded and validated; the engine on the decoded
        # records (validation into columns, the model, labels, routing, the prediction-log and review messages,
        # metric tallies); the rest of the handler is powertools, logging, EMF and the response's encoding
        batch_body = batch_event["body"]
        decoder = handler.service().body_decoder
        with quiet_stdout():
            decode_samples = timed(lambda: decoder.decode(batch_body), BATCH_REPEATS * 3)
            engine_samples = timed(
                lambda: handler.service().engine.predict(decoder.decode(batch_body), request_id="bench-stages"),
                BATCH_REPEATS * 3,
            )
            columnar_body = columnar_event["body"]
            infer_decoder = handler.service().infer_decoder
            columnar_decode_samples = timed(lambda: infer_decoder.decode(columnar_body), BATCH_REPEATS * 3)
            columnar_engine_samples = timed(
                lambda: handler.service().engine.predict(infer_decoder.decode(columnar_body), request_id="bench-col"),
                BATCH_REPEATS * 3,
            )

        cold = cold_starts(onnx_file, model_file)

    handler_p = percentiles(handler_samples)
    raw_p = percentiles(raw_samples)
    naive_p = percentiles(naive_samples)
    batch_rows_per_s = BATCH / statistics.median(batch_samples)
    raw_batch_rows_per_s = BATCH / statistics.median(raw_batch_samples)
    columnar_rows_per_s = BATCH / statistics.median(columnar_samples)
    ratios = {
        "p50_vs_raw_onnxruntime": round(handler_p["p50_us"] / raw_p["p50_us"], 2),
        "speedup_vs_naive": round(naive_p["p50_us"] / handler_p["p50_us"], 2),
        "batch_share_of_raw": round(batch_rows_per_s / raw_batch_rows_per_s, 3),
        "columnar_share_of_raw": round(columnar_rows_per_s / raw_batch_rows_per_s, 3),
        "columnar_share_of_raw_by_minimum": round(min(raw_batch_samples) / min(columnar_samples), 3),
        "batch_share_of_raw_by_minimum": round(min(raw_batch_samples) / min(batch_samples), 3),
        "cold_start_share_of_naive": round(cold["score"]["min_s"] / cold["naive"]["min_s"], 3),
    }
    results = {
        "calls": CALLS,
        "model": "logistic_regression (Telco churn, 19 features)",
        "one_record": {"handler": handler_p, "raw_onnxruntime": raw_p, "naive_sklearn_pandas": naive_p},
        "batch": {
            "records": BATCH,
            "handler_rows_per_s": round(batch_rows_per_s),
            "raw_onnxruntime_rows_per_s": round(raw_batch_rows_per_s),
            "stages_ms": {
                "decode_and_validate_body": ms(decode_samples),
                "engine_with_decode": ms(engine_samples),
                "raw_onnxruntime": ms(raw_batch_samples),
                "whole_handler": ms(batch_samples),
            },
        },
        "columnar_batch": {
            "records": BATCH,
            "measured": f"{INTERLEAVED_REPEATS} rounds of records handler, columnar handler, raw onnxruntime in turn",
            "route": "POST /v2/models/{usecase}/infer (Open Inference Protocol)",
            "handler_rows_per_s": round(columnar_rows_per_s),
            "raw_onnxruntime_rows_per_s": round(raw_batch_rows_per_s),
            "stages_ms": {
                "decode_and_validate_body": ms(columnar_decode_samples),
                "engine_with_decode": ms(columnar_engine_samples),
                "raw_onnxruntime": ms(raw_batch_samples),
                "whole_handler": ms(columnar_samples),
            },
        },
        "cold_start": {"score_function": cold["score"], "naive_sklearn": cold["naive"], "runs": COLD_REPEATS},
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": {
            "p50_vs_raw_onnxruntime": ratios["p50_vs_raw_onnxruntime"] <= TARGETS["p50_vs_raw_onnxruntime_max"],
            "speedup_vs_naive": ratios["speedup_vs_naive"] >= TARGETS["speedup_vs_naive_min"],
            "batch_share_of_raw": ratios["batch_share_of_raw"] >= TARGETS["batch_share_of_raw_min"],
            "columnar_share_of_raw": ratios["columnar_share_of_raw"] >= TARGETS["columnar_share_of_raw_min"],
            "cold_start_share_of_naive": ratios["cold_start_share_of_naive"]
            <= TARGETS["cold_start_share_of_naive_max"],
        },
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "machine": platform.machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
