"""Synthesize the app once per test session; every infra test reads the same template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.assembly import Assembly, synthesize

STACK_NAME = "Sluice-telco-churn"


@pytest.fixture(scope="session")
def assembly() -> Assembly:
    return synthesize()


@pytest.fixture(scope="session")
def template_json(assembly: Assembly) -> dict[str, Any]:
    return assembly.template(STACK_NAME)


@pytest.fixture(scope="session")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)


@pytest.fixture(scope="session")
def output_refs(template_json: dict[str, Any]) -> dict[str, str]:
    """Stack output key → logical id of the resource it references: how tests find resources."""
    return {
        key: output["Value"]["Ref"]
        for key, output in template_json["Outputs"].items()
        if isinstance(output["Value"], dict) and "Ref" in output["Value"]
    }


@pytest.fixture(scope="session")
def ingest_function_id(output_refs: dict[str, str]) -> str:
    return output_refs["IngestFunctionName"]


@pytest.fixture(scope="session")
def ingest_function(template_json: dict[str, Any], ingest_function_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template_json["Resources"][ingest_function_id]
    return resource


@pytest.fixture(scope="session")
def asset_dirs(assembly: Assembly) -> dict[str, Path]:
    """Asset hash → its staged directory in cdk.out."""
    manifest = json.loads((assembly.outdir / f"{STACK_NAME}.assets.json").read_text())
    return {
        asset_hash: assembly.outdir / entry["source"]["path"]
        for asset_hash, entry in manifest["files"].items()
        if entry["source"].get("packaging") == "zip"
    }


def get_att(logical_id: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def object_arn(bucket_id: str, pattern: str) -> dict[str, Any]:
    """The ARN CDK renders for objects of a bucket: ``<bucket arn>/<pattern>``."""
    return {"Fn::Join": ["", [get_att(bucket_id), f"/{pattern}"]]}
