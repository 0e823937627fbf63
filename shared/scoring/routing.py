"""Traffic routing: a stable canary split by entity, and shadow sampling by request.

A position in [0, 1) is the first 8 bytes of a sha256, big-endian, over 2**64. The canary position
hashes (use case, entity id), so one customer always gets the same model while the weight stays put
(and keeps it as the weight grows); shadow sampling hashes the request id, so a retried request is
sampled the same way.
"""

from __future__ import annotations

import hashlib

from shared.scoring.telemetry import CHALLENGER, CHAMPION

_SCALE = float(2**64)


def unit_position(text: str) -> float:
    """A uniform, stable position of ``text`` in [0, 1)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / _SCALE


def canary_position(usecase: str, entity_id: object) -> float:
    return unit_position(f"{usecase}|{entity_id}")


def canary_variant(usecase: str, entity_id: object, challenger_weight: float) -> str:
    """``"challenger"`` for the entities whose position falls under the weight, else ``"champion"``."""
    if challenger_weight > 0 and canary_position(usecase, entity_id) < challenger_weight:
        return CHALLENGER
    return CHAMPION


def shadow_sampled(request_id: str, sample_rate: float) -> bool:
    """Whether the challenger shadows this request (deterministic by request id)."""
    if sample_rate >= 1:
        return True
    return sample_rate > 0 and unit_position(f"shadow|{request_id}") < sample_rate
