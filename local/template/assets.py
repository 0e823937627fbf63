"""Publish the cloud assembly's file assets, as `cdk deploy` does before it creates the stack.

`cdk deploy` uploads every asset named in ``<stack>.assets.json`` to the bootstrap bucket
(``cdk-<qualifier>-assets-<account>-<region>``). Locally only the ``file`` assets are uploaded — the
training source bundle that SageMaker downloads is one. ``zip`` assets (Lambda code and layers) are
directories that the in-process Lambda runtime reads where they lie, so zipping them (the dependency
layer is about 190 MB) would only cost time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _substitute(text: str, *, account_id: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account_id)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def publish_file_assets(s3: Any, *, asset_root: Path, stack_name: str, account_id: str, region: str) -> list[str]:
    """Upload the stack's ``file`` assets to their bootstrap-bucket keys; return the ``s3://`` URLs written."""
    manifest_path = asset_root / f"{stack_name}.assets.json"
    if not manifest_path.exists():
        return []
    manifest = json.loads(manifest_path.read_text())
    published: list[str] = []
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for asset in manifest.get("files", {}).values():
        if asset["source"].get("packaging") != "file":
            continue
        source = asset_root / asset["source"]["path"]
        for destination in asset["destinations"].values():
            bucket = _substitute(destination["bucketName"], account_id=account_id, region=region)
            key = _substitute(destination["objectKey"], account_id=account_id, region=region)
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
                existing.add(bucket)
            s3.upload_file(str(source), bucket, key)
            published.append(f"s3://{bucket}/{key}")
    return published
