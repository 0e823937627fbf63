"""The backfill function, invoked once per object (the CLI's driver; a Map state calls it the same way)."""

from __future__ import annotations

import json
from typing import Any

from shared.backfill.exceptions import BackfillError
from shared.backfill.service import ObjectBackfill


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class BackfillFunction:
    """Invokes the backfill function synchronously for one object through a boto3 Lambda client."""

    def __init__(self, client: Any, function_name: str, contract_version: str) -> None:
        self._client = client
        self._function = function_name
        self._version = contract_version

    def __call__(self, manifest_key: str) -> ObjectBackfill:
        payload = {"manifest_key": manifest_key, "contract_version": self._version}
        try:
            response = self._client.invoke(
                FunctionName=self._function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
            )
            answer = json.loads(response["Payload"].read() or b"{}")
        except _client_errors() as exc:
            raise BackfillError(f"cannot invoke {self._function} for {manifest_key}: {exc}") from exc
        if response.get("FunctionError"):
            raise BackfillError(f"{manifest_key}: {answer.get('errorMessage', answer)}")
        return ObjectBackfill.model_validate(answer)
