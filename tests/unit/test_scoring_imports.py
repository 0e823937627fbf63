"""The score function's import path stays light: no scikit-learn, scipy or pandas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "pandas", "skl2onnx", "pyarrow")


def test_importing_the_score_handler_loads_no_training_libraries() -> None:
    # Given a fresh interpreter
    script = (
        "import json, sys\n"
        "import functions.score.handler, functions.prediction_log.handler\n"
        "import shared.scoring.engine, shared.scoring.models, shared.scoring.telemetry, shared.deployment.adapters\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    # When it imports the score handler and the scoring domain
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    # Then none of the heavy libraries is loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_a_cold_start_builds_neither_the_documents_models_nor_the_resolvers_validation() -> None:
    # Given a fresh interpreter
    script = "import json, sys\nimport functions.score.handler\nprint(json.dumps(sorted(sys.modules)))\n"
    # When it imports the score handler (a cold start)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    # Then the OpenAPI/feedback models and powertools' body validation wait for a request that needs them
    lazy = {
        "shared.scoring.api",
        "shared.scoring.feedback",
        "shared.scoring.prediction_log_lake",
        "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
        "boto3",
        # and the clients' modules wait for the first request that needs each
        "shared.scoring.endpoint",
        "shared.scoring.breaker",
        "shared.lake.adapters",
        "aws_lambda_powertools.utilities.idempotency",
    }
    assert not loaded & lazy, loaded & lazy
