"""Each contract between layers is spelled once: an environment variable's name, a lake prefix, a promotion
stage, a verdict or outcome is a string literal in one module of the code (outside the tests), which the
others import.

The scan reads every string constant of the code's modules (docstrings and dict keys aside: a dict key is a
field name, not a contract value) and reports each watched value found in more than one module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.environment import FunctionEnvironment
from shared.ingest.environment import IngestEnvironment
from shared.lake import layout
from shared.monitoring.environment import MonitorEnvironment
from shared.promotion.environment import PromotionEnvironment, RollbackEnvironment
from shared.promotion.transitions import PromotionOutcome, Stage, Verdict
from shared.review.environment import ReviewApiEnvironment, ReviewEnvironment
from shared.scoring.environment import PredictionLogEnvironment, ScoreSettings
from shared.training.environment import (
    RegisterEnvironment,
    RetrainEnvironment,
    TrainingSetEnvironment,
    TriggerEnvironment,
)

ROOT = Path(__file__).resolve().parents[2]
CODE = ("app.py", "infra", "functions", "shared", "cli", "local", "training")
ENVIRONMENTS: tuple[type[FunctionEnvironment], ...] = (
    IngestEnvironment,
    TrainingSetEnvironment,
    RegisterEnvironment,
    TriggerEnvironment,
    ScoreSettings,
    PredictionLogEnvironment,
    PromotionEnvironment,
    RollbackEnvironment,
    MonitorEnvironment,
    RetrainEnvironment,
    ReviewEnvironment,
    ReviewApiEnvironment,
)
LAKE_AREAS = (
    layout.CURATED,
    layout.QUARANTINE,
    layout.MANIFESTS,
    layout.TRAINING_SETS,
    layout.SAGEMAKER,
    layout.MODELS,
    layout.CAPTURE,
    layout.PREDICTIONS,
    layout.FEEDBACK,
    layout.PROMOTIONS,
    layout.MONITORING,
    layout.BATCH_PREDICTIONS,
)
SAME_WORD_OTHER_MEANING = {
    # value: modules where the same word is another contract, defined there once
    "shadow": {"shared/scoring/telemetry.py"},  # the shadow variant, a metric dimension value
}


def watched_values() -> set[str]:
    variables = {str(field.alias) for model in ENVIRONMENTS for field in model.model_fields.values() if field.alias}
    prefixes = {f"{area}/" for area in LAKE_AREAS}
    names = {member.value for enum in (Stage, Verdict, PromotionOutcome) for member in enum}
    return variables | prefixes | names


def code_modules(root: Path) -> Iterator[Path]:
    for entry in CODE:
        path = root / entry
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def string_literals(tree: ast.AST) -> Iterator[str]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skipped.add(id(node.value))  # a docstring
        elif isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            yield node.value


def spelled_in(root: Path, watched: set[str]) -> dict[str, set[str]]:
    """Each watched value → the modules that spell it as a string literal."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in code_modules(root):
        module = path.relative_to(root).as_posix()
        for value in string_literals(ast.parse(path.read_text(), filename=module)):
            if value in watched:
                found[value].add(module)
    return found


def spelled_twice(found: dict[str, set[str]]) -> dict[str, list[str]]:
    return {
        value: sorted(modules)
        for value, modules in found.items()
        if len(modules - SAME_WORD_OTHER_MEANING.get(value, set())) > 1
    }


def test_the_watched_contracts_are_collected() -> None:
    # Given the environment models, the lake layout and the promotion's enums
    watched = watched_values()
    # Then the scan watches what the layers share
    assert {"LAKE_BUCKET", "DEPLOYMENT_TABLE", "SLUICE_USECASE_FILE", "SLUICE_USECASE", "IDEMPOTENCY_TABLE"} <= watched
    assert {"curated/", "manifests/", "promotions/"} <= watched
    assert {"shadow", "canary", "watch", "pass", "fail", "inconclusive", "promoted", "rolled_back"} <= watched


def test_each_contract_is_spelled_in_one_module() -> None:
    # Given the code's modules, tests aside
    # When their string literals are read
    found = spelled_in(ROOT, watched_values())
    # Then every watched value was found (the scan reads the code) and none in two modules
    assert found["LAKE_BUCKET"] == {"shared/environment.py"}
    assert spelled_twice(found) == {}


def test_a_contract_spelled_twice_is_reported(tmp_path: Path) -> None:
    # Given a copy of the code where a handler spells LAKE_BUCKET again
    for module in code_modules(ROOT):
        copy = tmp_path / module.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(module.read_text())
    handler = tmp_path / "functions" / "ingest" / "handler.py"
    handler.write_text(handler.read_text() + '\nBUCKET_VARIABLE = "LAKE_BUCKET"\n')
    # When it is scanned
    found = spelled_in(tmp_path, watched_values())
    # Then the duplicate is reported
    assert spelled_twice(found) == {"LAKE_BUCKET": ["functions/ingest/handler.py", "shared/environment.py"]}


@pytest.mark.parametrize("model", ENVIRONMENTS)
def test_the_stack_builds_an_environment_by_field_names(model: type[FunctionEnvironment]) -> None:
    # Given a function's environment model
    # When the stack builds an environment from its field names
    # Then unknown fields are refused
    with pytest.raises(Exception, match="no field"):
        model.lambda_environment(no_such_field="x")
