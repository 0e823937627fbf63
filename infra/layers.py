"""Lambda layers shared by every capability's functions."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME, dependency_layer_code, shared_code_layer_code
from infra.settings import SHARED_DIR


class SharedCodeLayer(Construct):
    """The ``shared`` domain package (contracts, validation, metrics names) as one layer."""

    def __init__(self, scope: Construct, construct_id: str, *, source_dir: Path = SHARED_DIR) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=shared_code_layer_code(source_dir),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Sluice shared domain code (python/shared)",
        )


def dependency_layer(
    scope: Construct, construct_id: str, *, requirements_file: Path, aws_services: tuple[str, ...] | None = None
) -> lambda_.LayerVersion:
    """A layer of the third-party packages listed in ``requirements_file``; with ``aws_services``, botocore
    knows those services only (the ones its functions call)."""
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=dependency_layer_code(requirements_file, aws_services=aws_services),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"Sluice dependencies from layers/{requirements_file.name}",
    )
