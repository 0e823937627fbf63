"""The batch cost table's arithmetic (bench/batch_cost.py), on cases worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.batch_cost import (
    README_END,
    README_START,
    ChunkRequests,
    Durations,
    Machine,
    Workload,
    express_child_usd,
    job_cost,
    machine_from_template,
    success_path,
    write_readme_section,
)

NO_OVERHEAD = Durations(worker_init_s=0, plan_s_per_object=0, finish_s_per_chunk=0, step_s=0, sagemaker_startup_s=0)
REQUESTS = ChunkRequests(get=2, put=3, list=0, model_get=1)


def _machine(children: str = "STANDARD") -> Machine:
    return Machine(
        worker_memory_mb=2048,
        plan_memory_mb=1024,
        finish_memory_mb=1024,
        parent_transitions=3,
        item_transitions=1,
        child_execution_type=children,
        max_concurrency=10,
    )


# 1,000 rows in one object, 100 rows a chunk at 100 rows/s: 10 chunks of 1 s each
WORK = Workload(rows=1000, rows_per_chunk=100, worker_rows_per_s=100, rows_per_object=1000)


def test_a_job_with_standard_children_costs_what_the_hand_sum_says() -> None:
    # When the job is priced without any overhead
    cost = job_cost(WORK, _machine(), REQUESTS, NO_OVERHEAD)
    # Then Lambda: 10 chunks x 1 s x 2 GB = 20 GB-s; 12 invocations (10 workers, plan, finish)
    assert cost.chunks == 10
    assert cost.lambda_gb_s == pytest.approx(20.0)
    assert cost.lambda_usd == pytest.approx(20 * 0.0000133334 + 12 * 0.20 / 1e6)
    # And Step Functions: 3 parent transitions + 10 children of 1 = 13 transitions at $0.025 per 1,000
    assert cost.transitions == 13
    assert cost.step_functions_usd == pytest.approx(13 * 0.025 / 1000)
    # And S3: GET = 2 footer + 1 HEAD plan (plan) + 1 chunks.json (reader) + 2 plan + 10 results (finish)
    #   + 10 x 2 (chunks) + 10 x 1 (the model, one per worker); PUT = 2 (plan) + 1 (manifest) + 10 x 3;
    #   LIST = 1 (the prefix) + 1 (results) + 1 (failures)
    assert (cost.s3_get, cost.s3_put, cost.s3_list) == (46, 33, 3)
    assert cost.s3_usd == pytest.approx(46 * 0.0004 / 1000 + 33 * 0.005 / 1000 + 3 * 0.005 / 1000)
    assert cost.total_usd == pytest.approx(cost.lambda_usd + cost.step_functions_usd + cost.s3_usd)
    # And SageMaker: 1,000 rows at 100 rows/s = 10 s of one ml.m5.xlarge at $0.23/h
    assert cost.sagemaker_usd == pytest.approx(10 / 3600 * 0.23)


def test_express_children_are_priced_per_request_and_duration_without_transitions() -> None:
    # Given the same job on a machine whose map runs Express children
    cost = job_cost(WORK, _machine("EXPRESS"), REQUESTS, NO_OVERHEAD)
    # Then only the parent's 3 transitions are counted; each child is $1/1M plus 1 s x 64 MB x $0.00001667/GB-s
    assert cost.transitions == 3
    child = 1.00 / 1e6 + 1.0 * (64 / 1024) * 0.00001667
    assert cost.step_functions_usd == pytest.approx(3 * 0.025 / 1000 + 10 * child)
    # And the Standard machine's comparison column is the same figure
    assert job_cost(WORK, _machine(), REQUESTS, NO_OVERHEAD).step_functions_express_children_usd == pytest.approx(
        cost.step_functions_usd
    )


def test_express_duration_is_billed_in_100_ms_steps() -> None:
    # 0.24 s is billed as 0.3 s, 0.3 s as 0.3 s
    assert express_child_usd(0.24) == pytest.approx(1e-6 + 0.3 * 0.0625 * 0.00001667)
    assert express_child_usd(0.3) == pytest.approx(express_child_usd(0.24))


def test_cold_starts_are_counted_once_per_concurrent_worker() -> None:
    # Given 10 chunks, at most 4 workers at once, 2 s of cold start each
    machine = Machine(**{**_machine().__dict__, "max_concurrency": 4})
    durations = Durations(worker_init_s=2, plan_s_per_object=0, finish_s_per_chunk=0, step_s=0, sagemaker_startup_s=0)
    cost = job_cost(WORK, machine, REQUESTS, durations)
    # Then the worker is billed 10 x 1 s + 4 x 2 s at 2 GB, and the model is read 4 times
    assert cost.lambda_gb_s == pytest.approx((10 + 8) * 2)
    assert cost.s3_get == 46 - 10 + 4


def test_chunks_longer_than_five_minutes_do_not_fit_express_children() -> None:
    slow = Workload(rows=1000, rows_per_chunk=100, worker_rows_per_s=0.25, rows_per_object=1000)  # 400 s a chunk
    assert not job_cost(slow, _machine(), REQUESTS, NO_OVERHEAD).express_children_fit
    assert job_cost(WORK, _machine(), REQUESTS, NO_OVERHEAD).express_children_fit


def _template(execution_type: str) -> dict[str, Any]:
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": {"Type": "Task", "Resource": "<<1>>", "Next": "Map"},
            "Map": {
                "Type": "Map",
                "MaxConcurrency": 7,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                    "StartAt": "Score",
                    "States": {
                        "Score": {"Type": "Task", "Resource": "<<3>>", "End": True, "Catch": [{"Next": "Record"}]},
                        "Record": {"Type": "Pass", "Next": "Write"},
                        "Write": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "End": True},
                    },
                },
                "Next": "Finish",
            },
            "Finish": {"Type": "Task", "Resource": "<<5>>", "End": True},
        },
    }
    text = json.dumps(definition)
    parts: list[Any] = []
    for index, name in ((1, "PlanFn"), (3, "WorkerFn"), (5, "FinishFn")):
        head, text = text.split(f"<<{index}>>", 1)
        parts += [head, {"Fn::GetAtt": [name, "Arn"]}]
    parts.append(text)
    return {
        "Outputs": {"BatchStateMachineArn": {"Value": {"Ref": "Machine"}}},
        "Resources": {
            "Machine": {"Properties": {"DefinitionString": {"Fn::Join": ["", parts]}}},
            "PlanFn": {"Properties": {"MemorySize": 512}},
            "WorkerFn": {"Properties": {"MemorySize": 3008}},
            "FinishFn": {"Properties": {"MemorySize": 256}},
        },
    }


def test_the_machine_is_read_from_the_template() -> None:
    # Given a synthesized-shaped template (tokens in the joined definition)
    machine = machine_from_template(_template("EXPRESS"))
    # Then each function's memory is its own, and only the success path's states are counted
    assert (machine.worker_memory_mb, machine.plan_memory_mb, machine.finish_memory_mb) == (3008, 512, 256)
    assert (machine.parent_transitions, machine.item_transitions) == (3, 1)
    assert machine.child_execution_type == "EXPRESS"
    assert machine.max_concurrency == 7


def test_the_success_path_follows_next_to_the_end() -> None:
    states = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Task", "Next": "C"}, "C": {"Type": "Succeed"}}
    assert success_path(states, "A") == ["A", "B", "C"]


def test_the_readme_section_is_replaced_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\n## Next\n")
    write_readme_section("| new | table |", readme)
    text = readme.read_text()
    assert "old table" not in text
    assert f"{README_START}\n| new | table |\n{README_END}" in text
    assert text.endswith("## Next\n")
