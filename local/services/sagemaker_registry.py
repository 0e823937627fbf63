"""A fix to moto's model registry: ``UpdateModelPackage`` keeps what the request does not change.

moto overwrites ``CustomerMetadataProperties`` and ``ApprovalDescription`` with None when an update
leaves them out (approving a package erased its lineage properties). On AWS an update changes only
the fields it names, and ``CustomerMetadataProperties`` are merged key by key.
"""

from __future__ import annotations

from typing import Any


class ModelRegistryPatches:
    """Install / uninstall the fix (process-global, as every moto patch here)."""

    def __init__(self) -> None:
        self._original: Any = None

    def install(self) -> None:
        if self._original is not None:
            return
        from moto.sagemaker.models import SageMakerModelBackend

        original = SageMakerModelBackend.update_model_package

        def update_model_package(  # noqa: PLR0917 - moto's signature
            backend: Any,
            model_package_arn: str,
            model_approval_status: str | None,
            approval_description: str | None,
            customer_metadata_properties: dict[str, str] | None,
            customer_metadata_properties_to_remove: list[str],
            additional_inference_specifications_to_add: list[Any] | None,
        ) -> str:
            name = backend.model_package_name_mapping.get(model_package_arn, model_package_arn)
            package = backend.model_packages.get(name)
            if package is not None:
                existing = dict(package.customer_metadata_properties or {})
                customer_metadata_properties = {**existing, **(customer_metadata_properties or {})} or None
                approval_description = approval_description or package.approval_description
                model_approval_status = model_approval_status or package.model_approval_status
            return str(
                original(
                    backend,
                    model_package_arn,
                    model_approval_status,
                    approval_description,
                    customer_metadata_properties,
                    customer_metadata_properties_to_remove or [],
                    additional_inference_specifications_to_add,
                )
            )

        self._original = original
        setattr(SageMakerModelBackend, "update_model_package", update_model_package)  # noqa: B010 - a patch, undone on uninstall

    def uninstall(self) -> None:
        if self._original is None:
            return
        from moto.sagemaker.models import SageMakerModelBackend

        setattr(SageMakerModelBackend, "update_model_package", self._original)  # noqa: B010
        self._original = None
