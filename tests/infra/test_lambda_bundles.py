"""What Lambda unzips for each function (its code and every layer) fits its 250 MB limit; the batch worker's one
layer holds what the worker imports, pruned, and still reads a Parquet chunk and scores it."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.bundling import LAMBDA_UNZIPPED_LIMIT_BYTES
from infra.settings import FUNCTIONS_DIR, ROOT, BatchStackSettings
from shared.batch.adapters import list_job_objects, row_groups_reader
from shared.batch.jobs import run_chunk
from shared.batch.planning import plan_job
from shared.batch.types import JobPlan, JobRequest
from shared.batch.worker import BatchModels
from shared.usecase.settings import BatchSettings, UseCase, load_usecase
from tests.fakes import InMemoryObjectStore
from tests.infra.staged_assets import function_bundle, python312, staged_dir, unzipped_size, x86_64_twin
from tests.scoring_model import trained_model

TELCO = ROOT / "usecases" / "telco_churn.toml"
HEADROOM_BYTES = 50 * 1024 * 1024
"""Room every function keeps under Lambda's limit, for the next dependency or a bigger wheel."""
HANDLER = "handler.py"
FUNCTIONS = sorted(path.parent.name for path in FUNCTIONS_DIR.glob(f"*/{HANDLER}"))
BATCH_WORKER = "batch_worker"
TRAINING_LIBRARIES = ("sklearn", "scipy", "pandas")
RAW = "raw-bucket"
LAKE = "lake-bucket"
ROWS = 1000
ROWS_PER_CHUNK = 300
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def _function(template_json: dict[str, Any], asset_dirs: dict[str, Path], name: str) -> dict[str, Any]:
    """The function whose staged code is ``functions/<name>`` (its handler module, byte for byte)."""
    handler = (FUNCTIONS_DIR / name / HANDLER).read_bytes()
    (found,) = [
        resource
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and "S3Key" in resource["Properties"]["Code"]
        and (staged_dir(resource, asset_dirs) / HANDLER).read_bytes() == handler
    ]
    return found


@pytest.fixture(scope="module")
def worker_settings() -> BatchStackSettings:
    return BatchStackSettings.from_usecase(load_usecase(TELCO), usecase_file=TELCO)


# --- every function ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_function_and_its_layers_fit_lambdas_unzipped_limit(
    name: str, template_json: dict[str, Any], asset_dirs: dict[str, Path]
) -> None:
    # Given what Lambda unzips for the function: its code and each of its layers, as staged
    staged = function_bundle(template_json, _function(template_json, asset_dirs, name), asset_dirs)
    # When their unzipped sizes are added up
    sizes = [unzipped_size(directory) for directory in staged]
    total = sum(sizes)
    # Then they fit Lambda's 250 MB with room to spare
    parts = " + ".join(f"{size / 2**20:.1f}" for size in sizes)
    assert total <= LAMBDA_UNZIPPED_LIMIT_BYTES - HEADROOM_BYTES, (
        f"{name}: {total / 2**20:.1f} MiB unzipped (code + layers: {parts} MiB); Lambda refuses more than "
        f"{LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB and each function keeps {HEADROOM_BYTES / 2**20:.0f} MiB free"
    )


# --- the batch worker's layer ------------------------------------------------------------------


def test_the_batch_worker_has_one_pruned_layer_of_what_it_imports(
    template_json: dict[str, Any], asset_dirs: dict[str, Path], worker_settings: BatchStackSettings
) -> None:
    # Given the batch worker's layers as staged
    worker = _function(template_json, asset_dirs, BATCH_WORKER)
    _code, dependencies, shared = function_bundle(template_json, worker, asset_dirs)
    site = dependencies / "python"
    # Then one layer is the shared package and the other holds arm64 builds of what the worker imports
    assert (shared / "python" / "shared" / "batch" / "worker.py").is_file()
    for binary in (
        "pyarrow/lib.cpython-312-aarch64-linux-gnu.so",
        "pyarrow/_parquet.cpython-312-aarch64-linux-gnu.so",
        "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-aarch64-linux-gnu.so",
        "pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so",
        "msgspec/_core.cpython-312-aarch64-linux-gnu.so",
    ):
        assert (site / binary).is_file(), binary
    assert (site / "aws_lambda_powertools").is_dir()
    assert (site / "aws_xray_sdk").is_dir()
    # And what the worker never loads was pruned: Arrow's S3 filesystem and Flight, onnxruntime's C API and
    # tooling, headers, stubs, tests, and every botocore model but the services the worker calls
    for pruned in (
        "pyarrow/libarrow_s3.so*",
        "pyarrow/_s3fs.*",
        "pyarrow/libarrow_flight.so*",
        "pyarrow/include",
        "onnxruntime/capi/libonnxruntime.so*",
        "onnxruntime/transformers",
        "**/tests",
        "**/*.pyi",
        "**/*.pyx",
    ):
        assert not list(site.glob(pruned)), pruned
    assert sorted(p.name for p in (site / "botocore" / "data").iterdir() if p.is_dir()) == sorted(
        worker_settings.worker_aws_services
    )
    for name in TRAINING_LIBRARIES:
        assert not (site / name).exists(), name


@pytest.fixture(scope="module")
def parquet_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[UseCase, JobPlan, InMemoryObjectStore]:
    """A job over one Parquet object of ten row groups, planned at 300 rows a chunk, in an in-memory lake."""
    trained = trained_model()
    usecase = trained.usecase.model_copy(update={"batch": BatchSettings(max_rows_per_chunk=ROWS_PER_CHUNK)})
    names = list(usecase.contract.names)
    table = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in trained.records[:ROWS]])
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=100)
    store = InMemoryObjectStore()
    store.put(LAKE, trained.ref().onnx_key, trained.onnx)
    store.put(RAW, "batch/customers.parquet", buffer.getvalue())
    request = JobRequest(usecase=usecase.name, source_uri=f"s3://{RAW}/batch/")
    plan = plan_job(
        request,
        list_job_objects(store, request),
        model=trained.ref(),
        variant="champion",
        settings=usecase.batch,
        row_groups_of=row_groups_reader(store),
        now=NOW,
    )
    return usecase, plan, store


WORKER_SCRIPT = """
import importlib.util, io, json, sys
from pathlib import Path
site, root, inputs = sys.argv[1:4]
sys.path[:0] = [site, root]
import boto3, msgspec, numpy, onnxruntime, pyarrow, pyarrow.parquet as pq
import functions.batch_worker.handler  # the handler's own imports: powertools' Logger and Tracer (X-Ray)
from shared.batch.jobs import run_chunk
from shared.batch.types import Chunk, JobContext
from shared.batch.worker import BatchModels
from shared.usecase.settings import UseCase
from tests.fakes import InMemoryObjectStore

given = json.loads(Path(inputs).read_text())
store = InMemoryObjectStore()
for bucket, key, path in given["objects"]:
    store.put(bucket, key, Path(path).read_bytes())
usecase = UseCase.model_validate_json(given["usecase"])
models = BatchModels(
    store=store, bucket=given["lake"], feature_names=frozenset(c.name for c in usecase.contract.features)
)
result = run_chunk(
    Chunk.model_validate(given["chunk"]),
    JobContext.model_validate(given["context"]),
    usecase=usecase,
    store=store,
    lake_bucket=given["lake"],
    models=models,
    workdir=Path(given["workdir"]),
)
scores = pq.read_table(io.BytesIO(store.body(given["lake"], result.output_key)))
s3 = boto3.client("s3", region_name="us-east-1")
print(json.dumps({
    "result": result.model_dump(mode="json"),
    "scores": scores.column("score").to_pylist(),
    "from": {m.__name__: m.__file__ for m in (boto3, msgspec, numpy, onnxruntime, pyarrow)},
    "services": boto3.session.Session(region_name="us-east-1").get_available_services(),
    "s3": s3.meta.service_model.service_name,
    "training_libraries": [m for m in given["training_libraries"] if importlib.util.find_spec(m)],
}))
"""


def test_the_pruned_batch_layer_still_reads_a_parquet_chunk_and_scores_it(
    parquet_job: tuple[UseCase, JobPlan, InMemoryObjectStore], worker_settings: BatchStackSettings, tmp_path: Path
) -> None:
    # Given the worker's layer built and pruned exactly as for Lambda, but for this machine's x86_64
    python = python312()
    if python is None:
        pytest.skip("no CPython 3.12 here to import a cp312 layer with")
    site = x86_64_twin(worker_settings.worker_requirements_file, aws_services=worker_settings.worker_aws_services)
    # And the first chunk of a Parquet job (row groups 0-2), its object and the ONNX model written to files
    usecase, plan, store = parquet_job
    chunk = plan.chunks[0]
    objects = []
    for number, (bucket, key) in enumerate([(LAKE, plan.model.onnx_key), (chunk.bucket, chunk.key)]):
        path = tmp_path / f"object-{number}"
        path.write_bytes(store.body(bucket, key))
        objects.append([bucket, key, str(path)])
    inputs = tmp_path / "inputs.json"
    inputs.write_text(
        json.dumps(
            {
                "objects": objects,
                "usecase": usecase.model_dump_json(),
                "lake": LAKE,
                "chunk": chunk.model_dump(mode="json"),
                "context": plan.context.model_dump(mode="json"),
                "workdir": str(tmp_path / "work"),
                "training_libraries": TRAINING_LIBRARIES,
            }
        )
    )
    # When CPython 3.12 runs the worker's chunk step with nothing but the layer and Sluice's own code
    ran = subprocess.run(
        [python, "-I", "-c", WORKER_SCRIPT, str(site), str(ROOT), str(inputs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    # Then it read the chunk's 300 rows from Parquet and scored every one, as this interpreter's packages do
    features = frozenset(c.name for c in usecase.contract.features)
    models = BatchModels(store=store, bucket=LAKE, feature_names=features)
    expected = run_chunk(
        chunk, plan.context, usecase=usecase, store=store, lake_bucket=LAKE, models=models, workdir=tmp_path / "here"
    )
    assert (found["result"]["rows_in"], found["result"]["rows_scored"]) == (ROWS_PER_CHUNK, ROWS_PER_CHUNK)
    assert found["result"]["rows_scored"] == expected.rows_scored
    here = pq.read_table(io.BytesIO(store.body(LAKE, expected.output_key))).column("score").to_pylist()
    assert found["scores"] == pytest.approx(here, abs=1e-6)
    # And every package came from the layer, whose botocore knows the services the worker calls only (S3, X-Ray)
    assert all(path.startswith(str(site)) for path in found["from"].values()), found["from"]
    assert found["services"] == sorted(worker_settings.worker_aws_services)
    assert found["s3"] == "s3"
    assert found["training_libraries"] == []
