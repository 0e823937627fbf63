"""boto3 clients for a function's runtime: one per service, created on first use (never at import time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def client_factory() -> Callable[[str], Any]:
    """A function ``client("s3")`` that builds each service's client once, the first time it is asked for."""
    import boto3

    clients: dict[str, Any] = {}

    def client(name: str) -> Any:
        if name not in clients:
            clients[name] = boto3.client(name)
        return clients[name]

    return client


def client_error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for any other exception)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
