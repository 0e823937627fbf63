"""A function's code and configuration change through the Lambda API, and the next invocation runs the new ones.

On AWS, ``UpdateFunctionCode`` replaces the deployment package and the next invocation starts a fresh execution
environment from it; ``UpdateFunctionConfiguration`` changes its environment variables the same way. The
in-process runtime honours both: new code is unpacked into a code directory of its own and its handler imported
afresh, so no module of the old code runs again. ``GetFunction``'s ``Code.Location`` gives the current package.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.cloud import EmbeddedCloud

STACK = "Sluice-code-updates"

HANDLER = """
import os
from pathlib import Path

import flavour

SETTINGS = (Path(os.environ["LAMBDA_TASK_ROOT"]) / "settings.txt").read_text().strip()


def lambda_handler(event, context):
    return {"settings": SETTINGS, "flavour": flavour.NAME, "colour": os.environ.get("COLOUR")}
"""
"""Reads a bundled file at import (as the project's handlers read their use-case file once) and a sibling module."""


def _function(asset: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "assets", "S3Key": f"{asset}.zip"},
            "Handler": "handler.lambda_handler",
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Runtime": "python3.12",
            "Timeout": 10,
            "Environment": {"Variables": {"COLOUR": "blue"}},
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
        "UpdatedFunction": _function("asset.updated"),
        "OtherFunction": _function("asset.other"),
    }
}


def _assembly(directory: Path) -> Path:
    for asset, flavour in (("asset.updated", "vanilla"), ("asset.other", "lemon")):
        (directory / asset).mkdir()
        (directory / asset / "handler.py").write_text(HANDLER)
        (directory / asset / "flavour.py").write_text(f"NAME = {flavour!r}\n")
        (directory / asset / "settings.txt").write_text("contract 1.0.0\n")
    template_file = directory / f"{STACK}.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    return template_file


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[EmbeddedCloud]:
    with EmbeddedCloud(template=_assembly(tmp_path), state_dir=tmp_path / ".local", alarm_tick_s=None) as running:
        yield running


def _invoke(cloud: EmbeddedCloud, name: str) -> dict[str, Any]:
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    return answer


def _package(cloud: EmbeddedCloud, name: str) -> dict[str, bytes]:
    location = cloud.client("lambda").get_function(FunctionName=name)["Code"]["Location"]
    with urllib.request.urlopen(location) as response:
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {entry: archive.read(entry) for entry in archive.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_updated_code_runs_at_the_next_invocation_with_none_of_the_old_modules(cloud: EmbeddedCloud) -> None:
    # Given a function that has run (its handler and sibling module imported, its bundled file read)
    name = cloud.deployment.physical_id("UpdatedFunction")
    other = cloud.deployment.physical_id("OtherFunction")
    assert _invoke(cloud, name) == {"settings": "contract 1.0.0", "flavour": "vanilla", "colour": "blue"}

    # When its package, taken from GetFunction, is deployed again with a new bundled file and sibling module
    files = _package(cloud, name)
    assert set(files) == {"handler.py", "flavour.py", "settings.txt"}
    files["settings.txt"] = b"contract 1.1.0\n"
    files["flavour.py"] = b"NAME = 'chocolate'\n"
    updated = cloud.client("lambda").update_function_code(FunctionName=name, ZipFile=_zip(files))

    # Then the next invocation imports the new code: the new file and module, nothing of the old
    assert _invoke(cloud, name) == {"settings": "contract 1.1.0", "flavour": "chocolate", "colour": "blue"}
    # ... GetFunction gives the new package, and moto's record of it changed too
    assert _package(cloud, name)["settings.txt"] == b"contract 1.1.0\n"
    assert (
        updated["CodeSha256"] == cloud.client("lambda").get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    )
    # ... and another function with a sibling module of the same name still runs its own
    assert _invoke(cloud, other) == {"settings": "contract 1.0.0", "flavour": "lemon", "colour": "blue"}


def test_the_same_package_deployed_twice_is_one_code_directory(cloud: EmbeddedCloud) -> None:
    # Given a new package deployed once
    name = cloud.deployment.physical_id("UpdatedFunction")
    files = _package(cloud, name)
    files["settings.txt"] = b"contract 2.0.0\n"
    client = cloud.client("lambda")
    client.update_function_code(FunctionName=name, ZipFile=_zip(files))
    first = cloud.lambdas.function(name).code_dir

    # When the same bytes are deployed again
    client.update_function_code(FunctionName=name, ZipFile=_zip(files))

    # Then it runs from the same directory, with the new file
    assert cloud.lambdas.function(name).code_dir == first
    assert _invoke(cloud, name)["settings"] == "contract 2.0.0"


def test_updated_environment_is_seen_by_the_next_invocation(cloud: EmbeddedCloud) -> None:
    # Given a function whose COLOUR is blue
    name = cloud.deployment.physical_id("UpdatedFunction")
    assert _invoke(cloud, name)["colour"] == "blue"

    # When its configuration's environment changes
    cloud.client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"COLOUR": "red"}}, Timeout=20
    )

    # Then the next invocation reads the new value, and the runtime runs it with the new timeout
    assert _invoke(cloud, name)["colour"] == "red"
    assert cloud.lambdas.function(name).timeout_s == 20
    assert cloud.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {
        "COLOUR": "red"
    }


def test_a_package_that_is_not_a_zip_is_refused_and_the_old_code_runs_on(cloud: EmbeddedCloud) -> None:
    # Given a function that runs
    name = cloud.deployment.physical_id("UpdatedFunction")

    # When bytes that are no zip are deployed
    with pytest.raises(ClientError, match=r"InvalidParameterValue.*Could not unzip"):
        cloud.client("lambda").update_function_code(FunctionName=name, ZipFile=b"not a zip")

    # Then its code is the same as before
    assert _invoke(cloud, name)["settings"] == "contract 1.0.0"
