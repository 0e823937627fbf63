"""Where the CLI finds the stack: its outputs and clients for the account or the embedded cloud.

On AWS the outputs come from CloudFormation (``--stack Sluice-<usecase>``); on the embedded cloud (and
after ``cdk deploy --outputs-file``) from an outputs file. ``--endpoint-url`` points every client at the
embedded cloud.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.usecase.settings import UseCase, load_usecase

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUTS = ROOT / ".local" / "outputs.json"
DEFAULT_USECASE = ROOT / "usecases" / "telco_churn.toml"


class CliError(RuntimeError):
    """A command cannot be carried out; the message says why (exit code 1)."""


@dataclass
class StackContext:
    """The deployed stack of one use case, as the CLI sees it."""

    usecase: UseCase
    outputs: dict[str, str]
    endpoint_url: str | None = None
    region: str = field(default_factory=lambda: os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (one per service), pointed at ``endpoint_url`` when given."""
        if service not in self._clients:
            self._clients[service] = self._new_client(service)
        return self._clients[service]

    def _new_client(self, service: str) -> Any:
        import boto3

        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
            kwargs.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
            kwargs.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
        return boto3.client(service, **kwargs)

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError as exc:
            raise CliError(f"the stack has no output {key!r} (have: {', '.join(sorted(self.outputs))})") from exc


def stack_name(usecase: UseCase) -> str:
    return f"Sluice-{usecase.name.replace('_', '-')}"


def load_context(
    *, usecase_file: Path, endpoint_url: str | None, outputs_file: Path | None, stack: str | None
) -> StackContext:
    usecase = load_usecase(usecase_file)
    name = stack or stack_name(usecase)
    if outputs_file is not None or (stack is None and DEFAULT_OUTPUTS.exists() and endpoint_url):
        path = outputs_file or DEFAULT_OUTPUTS
        try:
            documents = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"cannot read the outputs file {path}: {exc}") from exc
        if name not in documents:
            raise CliError(f"{path} has no stack {name!r} (has: {', '.join(documents)})")
        return StackContext(usecase=usecase, outputs=documents[name], endpoint_url=endpoint_url)
    context = StackContext(usecase=usecase, outputs={}, endpoint_url=endpoint_url)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = context.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot find stack {name!r}: {exc}") from exc
    context.outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return context
