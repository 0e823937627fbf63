"""The embedded cloud's lifecycle: what its service emulations patch in moto is put back when it stops.

Two small clouds in this module, one after the other (each starts in well under a second).
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

from local.cloud import EmbeddedCloud
from local.services.emulations import EMULATIONS

TEMPLATE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}

Snapshot = dict[tuple[str, ...], object]


def moto_functions() -> Snapshot:
    """Every function-like attribute of the imported moto modules and of the classes they define."""
    found: Snapshot = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("moto") or module is None:
            continue
        for name, value in list(vars(module).items()):
            if _patchable(value):
                found[(module_name, name)] = value
            if inspect.isclass(value) and value.__module__ == module_name:
                for attribute, member in list(vars(value).items()):
                    if _patchable(member):
                        found[(module_name, name, attribute)] = member
    return found


def _patchable(value: object) -> bool:
    return inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod, property))


def _changed(before: Snapshot, after: Snapshot) -> set[tuple[str, ...]]:
    return {key for key in before.keys() | after.keys() if before.get(key) is not after.get(key)}


def _cloud(tmp_path: Path, name: str) -> EmbeddedCloud:
    assembly = tmp_path / name
    assembly.mkdir()
    template_file = assembly / "Sluice-lifecycle.template.json"
    template_file.write_text(json.dumps(TEMPLATE))
    return EmbeddedCloud(template=template_file, state_dir=assembly / ".local", alarm_tick_s=None)


def test_stopping_the_cloud_puts_back_every_moto_function_its_emulations_patched(tmp_path: Path) -> None:
    # Given moto with every module the emulations patch already imported (a first cloud ran and stopped)
    with _cloud(tmp_path, "first"):
        pass
    original = moto_functions()

    # When a second cloud starts and stops
    with _cloud(tmp_path, "second") as cloud:
        running = moto_functions()
        emulations = len(cloud.services.emulations)
    stopped = moto_functions()

    # Then while it ran, its emulations had replaced moto functions (the Lambda invoke among them) ...
    patched = _changed(original, running)
    assert ("moto.awslambda.models", "LambdaFunction", "invoke") in patched
    assert ("moto.sagemaker.models", "SageMakerModelBackend", "update_model_package") in patched
    assert ("moto.cloudwatch.models", "CloudWatchBackend", "get_metric_data") in patched
    assert emulations == len(EMULATIONS)
    # ... and once it stopped, every original is back and nothing it added is left behind
    assert _changed(original, stopped) == set()
