"""How a heavy use case's endpoint serves a deployment state: its production variants (pure).

One production variant per model version (``v<version>``, :func:`~shared.deployment.state.variant_name`):
the candidate as a ``ShadowProductionVariants`` entry while it shadows, both as production variants
(weights ``1 - w`` / ``w``) in canary, the champion alone otherwise. Weight changes between canary steps
need only ``UpdateEndpointWeightsAndCapacities`` (:class:`WeightsChange`); anything that changes the set
of variants needs a new endpoint config and ``UpdateEndpoint`` (:class:`ConfigChange`).
:class:`~shared.promotion.targets.EndpointTarget` makes the change on SageMaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.deployment.state import DeploymentState, ModelRef, variant_name
from shared.promotion.exceptions import TargetError


@dataclass(frozen=True)
class VariantWeight:
    """One model version served by the endpoint, at ``weight``."""

    ref: ModelRef
    weight: float


@dataclass(frozen=True)
class WeightsChange:
    """Same champion and challenger in canary before and after: only the weights move."""

    champion: ModelRef
    challenger: ModelRef
    weight: float
    """The challenger's share."""

    def desired_weights(self) -> list[dict[str, Any]]:
        """``DesiredWeightsAndCapacities`` of ``UpdateEndpointWeightsAndCapacities``."""
        return [
            {"VariantName": variant_name(self.champion), "DesiredWeight": 1.0 - self.weight},
            {"VariantName": variant_name(self.challenger), "DesiredWeight": self.weight},
        ]


@dataclass(frozen=True)
class ConfigChange:
    """A new set of variants: a new endpoint config."""

    production: tuple[VariantWeight, ...]
    shadow: tuple[VariantWeight, ...]


def model_name(endpoint_name: str, ref: ModelRef) -> str:
    """The SageMaker Model of one package version behind ``endpoint_name`` (at most 63 characters)."""
    return f"{endpoint_name[:55]}-v{ref.version}"


def endpoint_config_name(endpoint_name: str, revision: int) -> str:
    """The endpoint config written for the deployment state's ``revision``."""
    return f"{endpoint_name[:50]}-r{revision}"


def endpoint_change(
    before: DeploymentState, after: DeploymentState, *, endpoint_name: str
) -> WeightsChange | ConfigChange:
    """What the endpoint must change to serve ``after`` (it served ``before``)."""
    champion, challenger = after.champion, after.challenger
    if champion is None:
        raise TargetError(f"{after.usecase!r} has no champion to serve from {endpoint_name}")
    was_canary = before.challenger is not None and before.challenger_weight > 0 and not before.shadow
    is_canary = challenger is not None and after.challenger_weight > 0
    same_pair = was_canary and is_canary and before.champion == champion and before.challenger == challenger
    if same_pair and challenger is not None:
        return WeightsChange(champion, challenger, after.challenger_weight)
    production = [VariantWeight(champion, 1.0 - after.challenger_weight if is_canary else 1.0)]
    shadow: list[VariantWeight] = []
    if challenger is not None and is_canary:
        production.append(VariantWeight(challenger, after.challenger_weight))
    elif challenger is not None and after.shadow:
        shadow.append(VariantWeight(challenger, 1.0))
    return ConfigChange(tuple(production), tuple(shadow))
