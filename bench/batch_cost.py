"""What a batch job costs on AWS, from published prices and the machine as synthesized.

For 1M and 100M rows: Lambda (GB-seconds and requests), Step Functions (the Standard parent's transitions and
the map's children, priced as the machine synthesizes them, and as Express children for comparison), and S3
requests (GET, PUT, LIST), beside SageMaker Batch Transform on one ml.m5.xlarge.

Inputs, each from where it is decided:
- rows per chunk: the use case's ``[batch] max_rows_per_chunk`` (a Parquet object's chunk: runs of row groups);
- the worker's (and plan and finish functions') memory: the synthesized template;
- transitions per job and per chunk: the state machine's definition (the states a job, and one item, pass
  through on success), and whether the map's children are Standard or Express;
- S3 requests of one chunk: counted while the worker scores two chunks (``measure_chunk_requests``);
- the worker's rows/s: ``bench/results/batch.json`` (``bench/batch_bench.py``), else :data:`ASSUMED_ROWS_PER_S`.

Writes ``bench/results/batch_cost.json`` and the README's batch cost section; ``make bench`` runs it.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes import InMemoryObjectStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "batch_cost.json"
BENCH_RESULTS = ROOT / "bench" / "results" / "batch.json"
README = ROOT / "README.md"
README_START = "<!-- batch-cost:start (written by make bench: bench/batch_cost.py) -->"
README_END = "<!-- batch-cost:end -->"
ROWS = (1_000_000, 100_000_000)

# --- Published prices, us-east-1, on-demand (read 2026-11 from the pages named; check before quoting) ---------
# https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-s a month; requests)
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
# https://aws.amazon.com/step-functions/pricing/ (Standard: per state transition; Express: per request and
# per GB-second of duration, billed in 100 ms and 64 MB steps, the first 1,000K GB-hours)
SFN_STANDARD_TRANSITION = 0.025 / 1_000
SFN_EXPRESS_REQUEST = 1.00 / 1_000_000
SFN_EXPRESS_GB_SECOND = 0.00001667
SFN_EXPRESS_MEMORY_GB = 64 / 1024
"""An Express execution's billed memory: its payload (a chunk and the job context, a few KB) rounds up to 64 MB."""
SFN_EXPRESS_BILLING_STEP_S = 0.1
SFN_EXPRESS_MAX_DURATION_S = 300
"""An Express execution runs at most five minutes: children that may run longer cannot be Express."""
# https://aws.amazon.com/s3/pricing/ (S3 Standard: PUT, COPY, POST, LIST per 1,000; GET, SELECT and all other
# requests — HEAD included — per 1,000)
S3_PUT = 0.005 / 1_000
S3_LIST = 0.005 / 1_000
S3_GET = 0.0004 / 1_000
# https://aws.amazon.com/sagemaker/pricing/ (Batch Transform, ml.m5.xlarge, 4 vCPU, 16 GiB; billed per second)
SAGEMAKER_M5_XLARGE_HOUR = 0.23

# --- Assumptions (said in the README beside the table) --------------------------------------------------------
ASSUMED_ROWS_PER_S = 100_000.0
"""The worker's rows/s when ``bench/results/batch.json`` is absent (a Parquet chunk, one worker)."""
ROWS_PER_OBJECT = 1_000_000
"""The job's input: Parquet objects of a million rows each (100 objects for 100M rows)."""
WORKER_INIT_S = 3.0
"""A worker's cold start (imports of pyarrow and onnxruntime, the model's GET and session); billed since
Lambda bills the INIT phase (2025-08). One per concurrent worker: ``min(chunks, MaxConcurrency)``."""
PLAN_S_PER_OBJECT = 0.05
"""The plan step: a listing page and a Parquet footer (two ranged GETs) per object."""
FINISH_S_PER_CHUNK = 0.02
"""The finish step: one small GET (a chunk's result) per chunk."""
STEP_S = 1.0
"""Fixed duration of the plan and the finish invocations."""
SAGEMAKER_STARTUP_S = 360.0
"""A Batch Transform job's instance launch and container start (minutes, billed as instance time)."""
SAGEMAKER_ROWS_PER_S_SHARE = 1.0
"""Rows/s of the ml.m5.xlarge relative to one worker: the same engine on the same arrays."""


@dataclass(frozen=True, kw_only=True)
class Durations:
    """The durations the table assumes beyond the worker's measured rows/s (defaults: the constants above)."""

    worker_init_s: float = WORKER_INIT_S
    plan_s_per_object: float = PLAN_S_PER_OBJECT
    finish_s_per_chunk: float = FINISH_S_PER_CHUNK
    step_s: float = STEP_S
    sagemaker_startup_s: float = SAGEMAKER_STARTUP_S


@dataclass(frozen=True, kw_only=True)
class Machine:
    """The batch state machine as synthesized: what a job's states and functions cost."""

    worker_memory_mb: int
    plan_memory_mb: int
    finish_memory_mb: int
    parent_transitions: int
    """States a job passes through on success (``Plan``, ``ScoreChunks``, ``Finish``)."""
    item_transitions: int
    """States one item (a chunk) passes through on success (``ScoreChunk``)."""
    child_execution_type: str
    """``STANDARD`` or ``EXPRESS``: the map's ``ProcessorConfig.ExecutionType``."""
    max_concurrency: int


@dataclass(frozen=True, kw_only=True)
class ChunkRequests:
    """S3 requests of one chunk's worker (warm), and of a cold worker's model load."""

    get: int
    put: int
    list: int = 0
    model_get: int = 1
    """A cold worker's GET of the model file (then kept in the process)."""


@dataclass(frozen=True, kw_only=True)
class Workload:
    rows: int
    rows_per_chunk: int
    worker_rows_per_s: float
    rows_per_object: int = ROWS_PER_OBJECT

    @property
    def chunks(self) -> int:
        return math.ceil(self.rows / self.rows_per_chunk)

    @property
    def objects(self) -> int:
        return math.ceil(self.rows / self.rows_per_object)

    @property
    def chunk_seconds(self) -> float:
        return self.rows_per_chunk / self.worker_rows_per_s


@dataclass(frozen=True, kw_only=True)
class Cost:
    rows: int
    chunks: int
    lambda_gb_s: float
    lambda_requests: int
    lambda_usd: float
    transitions: int
    step_functions_usd: float
    step_functions_express_children_usd: float
    express_children_fit: bool
    s3_get: int
    s3_put: int
    s3_list: int
    s3_usd: float
    total_usd: float
    sagemaker_hours: float
    sagemaker_usd: float
    notes: list[str] = field(default_factory=list)


def express_child_usd(seconds: float) -> float:
    """One Express child execution: its request and its duration at the minimum memory, in 100 ms steps."""
    billed = math.ceil(round(seconds / SFN_EXPRESS_BILLING_STEP_S, 6)) * SFN_EXPRESS_BILLING_STEP_S
    return SFN_EXPRESS_REQUEST + billed * SFN_EXPRESS_MEMORY_GB * SFN_EXPRESS_GB_SECOND


def job_cost(work: Workload, machine: Machine, requests: ChunkRequests, durations: Durations | None = None) -> Cost:
    """Every priced part of one job that succeeds on its first try (no retries, no rejected rows)."""
    took = durations or Durations()
    chunks, objects = work.chunks, work.objects
    workers = min(chunks, machine.max_concurrency)
    worker_gb_s = (chunks * work.chunk_seconds + workers * took.worker_init_s) * machine.worker_memory_mb / 1024
    plan_gb_s = (took.step_s + objects * took.plan_s_per_object) * machine.plan_memory_mb / 1024
    finish_gb_s = (took.step_s + chunks * took.finish_s_per_chunk) * machine.finish_memory_mb / 1024
    gb_s = worker_gb_s + plan_gb_s + finish_gb_s
    invocations = chunks + 2
    lambda_usd = gb_s * LAMBDA_ARM_GB_SECOND + invocations * LAMBDA_REQUEST

    parent = machine.parent_transitions * SFN_STANDARD_TRANSITION
    children_standard = chunks * machine.item_transitions * SFN_STANDARD_TRANSITION
    children_express = chunks * express_child_usd(work.chunk_seconds)
    express = machine.child_execution_type == "EXPRESS"
    transitions = machine.parent_transitions + (0 if express else chunks * machine.item_transitions)
    sfn_usd = parent + (children_express if express else children_standard)

    pages = math.ceil(objects / 1000)
    # plan: list the prefix, read each Parquet footer (2 ranged GETs), HEAD plan.json, PUT plan.json + chunks.json;
    # the map's ItemReader: GET chunks.json; finish: HEAD + GET plan.json, LIST results/ and failures/, GET each
    # result, PUT manifest.json
    s3_list = pages + math.ceil(chunks / 1000) + 1 + chunks * requests.list
    s3_get = (2 * objects + 1) + 1 + (2 + chunks) + chunks * requests.get + workers * requests.model_get
    s3_put = 2 + 1 + chunks * requests.put
    s3_usd = s3_get * S3_GET + s3_put * S3_PUT + s3_list * S3_LIST

    sagemaker_s = took.sagemaker_startup_s + work.rows / (work.worker_rows_per_s * SAGEMAKER_ROWS_PER_S_SHARE)
    sagemaker_hours = sagemaker_s / 3600
    return Cost(
        rows=work.rows,
        chunks=chunks,
        lambda_gb_s=gb_s,
        lambda_requests=invocations,
        lambda_usd=lambda_usd,
        transitions=transitions,
        step_functions_usd=sfn_usd,
        step_functions_express_children_usd=parent + children_express,
        express_children_fit=work.chunk_seconds + took.worker_init_s < SFN_EXPRESS_MAX_DURATION_S,
        s3_get=s3_get,
        s3_put=s3_put,
        s3_list=s3_list,
        s3_usd=s3_usd,
        total_usd=lambda_usd + sfn_usd + s3_usd,
        sagemaker_hours=sagemaker_hours,
        sagemaker_usd=sagemaker_hours * SAGEMAKER_M5_XLARGE_HOUR,
    )


# --- inputs from the machine ------------------------------------------------------------------------------


def _definition(template: dict[str, Any], machine_id: str) -> tuple[dict[str, Any], list[Any]]:
    """The machine's definition, each CloudFormation token replaced by ``<<i>>`` (its index in the join)."""
    parts = template["Resources"][machine_id]["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<<{i}>>" for i, p in enumerate(parts))
    return json.loads(text), parts


def success_path(states: dict[str, Any], start: str) -> list[str]:
    """The states an execution passes through when none fails: from ``start`` along ``Next`` to an end."""
    path, name = [], start
    while True:
        path.append(name)
        state = states[name]
        if state.get("End") or state["Type"] in ("Succeed", "Fail") or "Next" not in state:
            return path
        name = state["Next"]


def _memory_of(template: dict[str, Any], parts: list[Any], resource: str) -> int:
    token = parts[int(resource.strip("<>"))]
    logical_id = token["Fn::GetAtt"][0]
    return int(template["Resources"][logical_id]["Properties"]["MemorySize"])


def machine_from_template(template: dict[str, Any]) -> Machine:
    """Read the batch machine (the stack output ``BatchStateMachineArn``) and its functions' memory."""
    definition, parts = _definition(template, template["Outputs"]["BatchStateMachineArn"]["Value"]["Ref"])
    states = definition["States"]
    parent = success_path(states, definition["StartAt"])
    (map_name,) = [n for n in parent if states[n]["Type"] == "Map"]
    processor = states[map_name]["ItemProcessor"]
    item = success_path(processor["States"], processor["StartAt"])
    task_states = [n for n in parent if states[n]["Type"] == "Task"]
    plan, finish = task_states[0], task_states[-1]
    (worker,) = [processor["States"][n] for n in item if processor["States"][n]["Type"] == "Task"]
    return Machine(
        worker_memory_mb=_memory_of(template, parts, worker["Resource"]),
        plan_memory_mb=_memory_of(template, parts, states[plan]["Resource"]),
        finish_memory_mb=_memory_of(template, parts, states[finish]["Resource"]),
        parent_transitions=len(parent),
        item_transitions=len(item),
        child_execution_type=processor["ProcessorConfig"].get("ExecutionType", "STANDARD"),
        max_concurrency=int(states[map_name].get("MaxConcurrency", 0)) or 1000,
    )


def measured_rows_per_s() -> tuple[float, str]:
    """The worker's rows/s from the batch bench's last run, else the stated assumption."""
    if BENCH_RESULTS.exists():
        figures = json.loads(BENCH_RESULTS.read_text())
        return float(figures["worker_rows_per_s"]), f"measured by bench/batch_bench.py on {figures['rows']:,} rows"
    return ASSUMED_ROWS_PER_S, "assumed (bench/results/batch.json absent)"


def measure_chunk_requests(rows_per_chunk: int) -> ChunkRequests:
    """Score two Parquet chunks of ``rows_per_chunk`` rows (same job, same worker process) through a store that
    counts requests: the second chunk's are a warm worker's, the difference in GETs is the model's load."""
    import io
    import tempfile
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.batch.adapters import row_groups_reader
    from shared.batch.jobs import run_chunk
    from shared.batch.planning import plan_job
    from shared.batch.types import JobRequest, ListedObject
    from shared.batch.worker import BatchModels
    from tests.scoring_model import trained_model

    trained = trained_model()
    usecase = trained.usecase
    names = list(usecase.contract.names)
    base = [{n: r.get(n) for n in names} for r in trained.records]
    rows = [dict(base[i % len(base)], rownames=i + 1) for i in range(2 * rows_per_chunk)]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=rows_per_chunk)
    store = CountingStore()
    store.put("lake", trained.ref().onnx_key, trained.onnx)
    store.put("raw", "batch/cost.parquet", buffer.getvalue())
    settings = usecase.batch.model_copy(update={"max_rows_per_chunk": rows_per_chunk})
    item = ListedObject(bucket="raw", key="batch/cost.parquet", size=len(buffer.getvalue()), etag="e")
    plan = plan_job(
        JobRequest(usecase=usecase.name, source_uri="s3://raw/batch/"),
        [item],
        model=trained.ref(),
        variant="champion",
        settings=settings,
        row_groups_of=row_groups_reader(store),
        now=datetime.now(UTC),
    )
    models = BatchModels(store=store, bucket="lake", feature_names=frozenset(c.name for c in usecase.contract.features))
    counted: list[dict[str, int]] = []
    scoring = usecase.model_copy(update={"batch": settings})
    with tempfile.TemporaryDirectory() as workdir:
        for chunk in plan.chunks[:2]:
            store.counts.clear()
            run_chunk(
                chunk,
                plan.context,
                usecase=scoring,
                store=store,
                lake_bucket="lake",
                models=models,
                workdir=Path(workdir),
            )
            counted.append(dict(store.counts))
    cold, warm = counted
    return ChunkRequests(
        get=warm.get("get", 0),
        put=warm.get("put", 0),
        list=warm.get("list", 0),
        model_get=cold.get("get", 0) - warm.get("get", 0),
    )


class CountingStore(InMemoryObjectStore):
    """The in-memory store, counting requests as S3 prices them (a HEAD is priced as a GET)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        self._count("get")
        return super().get_range(bucket, key, start, end)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self._count("get")
        return super().get_bytes(bucket, key)

    def exists(self, bucket: str, key: str) -> bool:
        self._count("get")
        return super().exists(bucket, key)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        self._count("list")
        return super().list_keys(bucket, prefix)

    def _write(self, bucket: str, key: str, body: bytes) -> None:
        self._count("put")
        super()._write(bucket, key, body)


# --- the table --------------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def table_markdown(costs: list[Cost], machine: Machine) -> str:
    kind = machine.child_execution_type.title()
    lines = [
        f"| Rows | Chunks | Lambda GB-s | Lambda | Step Functions ({kind} children) | S3 requests (GET/PUT/LIST) | S3 "
        "| **Sluice total** | Step Functions with Express children | SageMaker Batch Transform (ml.m5.xlarge) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        lines.append(
            f"| {c.rows:,} | {c.chunks:,} | {c.lambda_gb_s:,.0f} | {_usd(c.lambda_usd)} | {_usd(c.step_functions_usd)} "
            f"({c.transitions:,} transitions) | {c.s3_get:,} / {c.s3_put:,} / {c.s3_list:,} | {_usd(c.s3_usd)} "
            f"| **{_usd(c.total_usd)}** | {_usd(c.step_functions_express_children_usd)} "
            f"({'fit' if c.express_children_fit else 'do not fit'}) "
            f"| {_usd(c.sagemaker_usd)} ({c.sagemaker_hours:.2f} h) |"
        )
    return "\n".join(lines)


def express_advice(costs: list[Cost], machine: Machine, chunk_seconds: float) -> str:
    """Whether Express children would fit (a chunk well inside five minutes) and what they would save."""
    largest = max(costs, key=lambda c: c.rows)
    if machine.child_execution_type == "EXPRESS":
        return "- The map's children are Express executions."
    if not largest.express_children_fit:
        return f"- Express children would not fit: a chunk runs about {chunk_seconds:.0f} s, past five minutes."
    return (
        f"- Advice (the machine is unchanged): a chunk runs about {chunk_seconds:.2f} s, well inside Express's five "
        f"minutes, and the worker is idempotent (at-least-once children are safe), so Express children would fit: "
        f"Step Functions at {largest.rows:,} rows would cost {_usd(largest.step_functions_express_children_usd)} "
        f"instead of {_usd(largest.step_functions_usd)}."
    )


def assumptions_markdown(
    machine: Machine, requests: ChunkRequests, rows_per_chunk: int, rows_per_s: float, source: str
) -> str:
    return "\n".join(
        [
            f"- From the synthesized machine: worker {machine.worker_memory_mb} MB (plan {machine.plan_memory_mb} MB, "
            f"finish {machine.finish_memory_mb} MB), arm64; a job passes {machine.parent_transitions} parent states "
            f"and each chunk {machine.item_transitions} ({machine.child_execution_type.title()} children); "
            f"MaxConcurrency {machine.max_concurrency}.",
            f"- From the use case: {rows_per_chunk:,} rows per chunk (`[batch] max_rows_per_chunk`, Parquet input "
            f"in objects of {ROWS_PER_OBJECT:,} rows).",
            f"- Worker throughput {rows_per_s:,.0f} rows/s ({source}), taken as the arm64 worker's; "
            f"{WORKER_INIT_S:g} s of billed cold start per concurrent worker.",
            f"- S3 requests of one chunk, counted while the worker scored two: {requests.get} GET (HEAD of its result "
            f"and ranged reads), {requests.put} PUT (scores, prediction log, result), {requests.list} LIST; "
            f"{requests.model_get} GET of the model per cold worker; plus the plan's listing and footers and the "
            "finish's reads of each result. No retries, no rejected rows.",
            f"- SageMaker: one instance at the worker's rows/s plus {SAGEMAKER_STARTUP_S / 60:g} min of start-up; "
            "its S3 traffic is not counted.",
            "- Prices: us-east-1 on-demand as published (Lambda arm64 $0.0000133334/GB-s, $0.20/1M requests; "
            "Step Functions Standard $0.025/1,000 transitions, Express $1.00/1M requests + $0.00001667/GB-s at 64 MB "
            "in 100 ms steps; S3 PUT/LIST $0.005/1,000, GET $0.0004/1,000; ml.m5.xlarge Batch Transform $0.23/h), "
            "constants in `bench/batch_cost.py`; free tiers not subtracted.",
        ]
    )


def write_readme_section(section: str, readme: Path = README) -> None:
    """Replace the text between the batch cost markers of the README."""
    text = readme.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    readme.write_text(text[:start] + "\n" + section.strip() + "\n" + text[end:])


def main() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from infra.assembly import synthesize
    from shared.usecase.settings import load_usecase

    assembly = synthesize()
    machine = machine_from_template(assembly.template("Sluice-telco-churn"))
    usecase = load_usecase(ROOT / "usecases" / "telco_churn.toml")
    rows_per_chunk = usecase.batch.max_rows_per_chunk
    rows_per_s, source = measured_rows_per_s()
    requests = measure_chunk_requests(rows_per_chunk)
    costs = [
        job_cost(Workload(rows=rows, rows_per_chunk=rows_per_chunk, worker_rows_per_s=rows_per_s), machine, requests)
        for rows in ROWS
    ]
    section = (
        table_markdown(costs, machine)
        + "\n\n"
        + assumptions_markdown(machine, requests, rows_per_chunk, rows_per_s, source)
        + "\n"
        + express_advice(costs, machine, rows_per_chunk / rows_per_s)
    )
    figures = {
        "machine": asdict(machine),
        "chunk_requests": asdict(requests),
        "worker_rows_per_s": rows_per_s,
        "worker_rows_per_s_source": source,
        "rows_per_chunk": rows_per_chunk,
        "costs": [asdict(c) for c in costs],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    if README_START in README.read_text():
        write_readme_section(section)
    print(section)
    return figures


if __name__ == "__main__":
    main()
