"""Physical names in CloudFormation's style for resources the template leaves unnamed.

CloudFormation names such a resource ``<stack>-<LogicalId>-<RANDOM>``, truncating the stack name and
logical id to fit the service's limit. Locally the suffix is derived from the stack and logical id
(not random), so names are the same on every start.
"""

from __future__ import annotations

import base64
import hashlib
import re

SUFFIX_LENGTH = 12


def physical_name(stack_name: str, logical_id: str, *, max_length: int = 64, lowercase: bool = False) -> str:
    """``<stack>-<logicalid>-<suffix>``, at most ``max_length`` characters (lowercased for S3 buckets)."""
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).digest()
    suffix = base64.b32encode(digest).decode().rstrip("=")[:SUFFIX_LENGTH]
    budget = max_length - SUFFIX_LENGTH - 2
    stack_part = stack_name[: max(budget - len(logical_id), budget // 2)]
    logical_part = logical_id[: budget - len(stack_part)]
    name = f"{stack_part}-{logical_part}-{suffix}"
    if lowercase:
        name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
    return name
