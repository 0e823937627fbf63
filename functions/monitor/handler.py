"""Placeholder of the monitor function (replaced wholesale by the monitor's own handler)."""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:  # noqa: ARG001 - Lambda calls it so
    return {"status": "not implemented"}
