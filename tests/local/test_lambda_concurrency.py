"""Handlers of different functions run at the same time in the embedded cloud, each in its own environment.

On AWS each function runs in its own execution environments, so a long invocation of one function never
delays another's. The in-process runtime emulates that with one execution environment per function and a
per-thread ``os.environ``; these tests drive two small functions from a hand-written template directly
through the runtime, from several threads, as the API Gateway front and Step Functions do.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.cloud import EmbeddedCloud
from local.services.lambda_code import ThreadEnvironment

STACK = "Sluice-concurrency"
RENDEZVOUS = "sluice_test_rendezvous"
"""A module the handlers import to meet the test: its events live in this process, as the handlers do."""

WAITING_HANDLER = f"""
import os

import {RENDEZVOUS} as rendezvous


def lambda_handler(event, context):
    before = os.environ["COLOUR"]
    rendezvous.waiting.set()
    released = rendezvous.released.wait(timeout=5)
    return {{"released": released, "before": before, "after": os.environ["COLOUR"]}}
"""

RELEASING_HANDLER = f"""
import os
import threading

import {RENDEZVOUS} as rendezvous


def lambda_handler(event, context):
    seen = {{}}
    worker = threading.Thread(target=lambda: seen.update(colour=os.environ.get("COLOUR")))
    worker.start()
    worker.join()
    colour = os.environ["COLOUR"]
    rendezvous.released.set()
    return {{"colour": colour, "in_its_thread": seen["colour"], "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}}
"""


def _function(asset: str, colour: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "assets", "S3Key": f"{asset}.zip"},
            "Handler": "handler.lambda_handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.12",
            "Timeout": 10,
            "Environment": {"Variables": {"COLOUR": colour}},
        },
        "DependsOn": ["FunctionRole"],
        "Metadata": {"aws:asset:path": asset, "aws:asset:property": "Code"},
    }


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ],
                }
            },
        },
        "WaitingFunction": _function("asset.waiting", "blue"),
        "ReleasingFunction": _function("asset.releasing", "green"),
    }
}


@pytest.fixture
def rendezvous() -> Iterator[types.SimpleNamespace]:
    module = types.ModuleType(RENDEZVOUS)
    module.waiting = threading.Event()  # type: ignore[attr-defined]
    module.released = threading.Event()  # type: ignore[attr-defined]
    sys.modules[RENDEZVOUS] = module
    try:
        yield types.SimpleNamespace(waiting=module.waiting, released=module.released)
    finally:
        del sys.modules[RENDEZVOUS]


def _assembly(directory: Path) -> Path:
    for asset, source in (("asset.waiting", WAITING_HANDLER), ("asset.releasing", RELEASING_HANDLER)):
        (directory / asset).mkdir()
        (directory / asset / "handler.py").write_text(source)  # only its handler, as the project's functions
    template_file = directory / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    return template_file


@pytest.fixture
def cloud(tmp_path: Path, rendezvous: types.SimpleNamespace) -> Iterator[EmbeddedCloud]:
    del rendezvous
    with EmbeddedCloud(template=_assembly(tmp_path), state_dir=tmp_path / ".local", alarm_tick_s=None) as running:
        yield running


def _invoke_in_thread(cloud: EmbeddedCloud, logical_id: str, results: dict[str, Any]) -> threading.Thread:
    def invoke() -> None:
        result = cloud.lambdas.invoke(cloud.deployment.physical_id(logical_id), {})
        results[logical_id] = json.loads(result.payload)

    thread = threading.Thread(target=invoke)
    thread.start()
    return thread


def test_two_functions_run_at_the_same_time(cloud: EmbeddedCloud, rendezvous: types.SimpleNamespace) -> None:
    # Given the waiting function runs and waits until another function releases it
    results: dict[str, Any] = {}
    waiting = _invoke_in_thread(cloud, "WaitingFunction", results)
    assert rendezvous.waiting.wait(timeout=10)

    # When the releasing function is invoked meanwhile
    releasing = cloud.lambdas.invoke(cloud.deployment.physical_id("ReleasingFunction"), {})
    waiting.join(timeout=10)

    # Then it ran while the first still ran (which saw the release), both without error
    assert not releasing.function_error, releasing.payload
    assert results["WaitingFunction"]["released"] is True


def test_each_concurrent_invocation_sees_its_own_environment(
    cloud: EmbeddedCloud, rendezvous: types.SimpleNamespace
) -> None:
    # Given two functions with different values of the same variable, the first running and waiting
    results: dict[str, Any] = {}
    waiting = _invoke_in_thread(cloud, "WaitingFunction", results)
    assert rendezvous.waiting.wait(timeout=10)

    # When the second reads the variable while the first runs, then the first reads it again
    releasing = json.loads(cloud.lambdas.invoke(cloud.deployment.physical_id("ReleasingFunction"), {}).payload)
    waiting.join(timeout=10)

    # Then each saw only its own value, before and after the other ran, in a thread it started too
    assert results["WaitingFunction"] == {"released": True, "before": "blue", "after": "blue"}
    assert releasing["colour"] == "green"
    assert releasing["in_its_thread"] == "green"
    assert releasing["function"] == cloud.deployment.physical_id("ReleasingFunction")
    # ... and this thread, no handler's, sees neither
    assert "COLOUR" not in os.environ


def test_the_per_invocation_environment_is_removed_when_the_cloud_stops(tmp_path: Path) -> None:
    # Given the process's own environment, thread start and stdout
    environ, start, stdout = os.environ, threading.Thread.start, sys.stdout

    # When an embedded cloud runs, then stops
    with EmbeddedCloud(template=_assembly(tmp_path), state_dir=tmp_path / ".local", alarm_tick_s=None):
        running = os.environ
        os.environ["SLUICE_TEST_WRITTEN_WHILE_RUNNING"] = "yes"  # no handler's thread: the process's variable

    # Then os.environ was per invocation while it ran, and everything is the process's own again
    assert isinstance(running, ThreadEnvironment)
    assert os.environ is environ
    assert threading.Thread.start is start
    assert sys.stdout is stdout
    assert os.environ.pop("SLUICE_TEST_WRITTEN_WHILE_RUNNING") == "yes"
