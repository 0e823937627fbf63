"""Deliberately bad candidates for `make demo` and the end-to-end tests, registered as a user could.

:func:`slowed` turns a trained model's ONNX file into one that gives the same scores but spends about
``width² * layers`` multiply-adds per record: one record at a time it stays well inside the offline
gate's latency budget, and the replay finds its scores identical to the champion's, but a batch of live
requests takes far longer than the shadow's time bound. That is a defect only live traffic shows: the
shadow stage abandons its scores, counts ``ShadowErrors``, and the candidate's shadow-error alarm rolls
the promotion back.

:func:`swapped` turns it into one that truly disagrees: each record's probabilities with their two columns
swapped, so the challenger scores ``1 - p`` where the champion scores ``p`` (a shadow challenger far from the
champion, without a second training run, whose scores a seeded training would make equal to the champion's).

:func:`register_copy` registers such a file as a new version of the model package group through the
SageMaker API (the registry is moto's on the embedded cloud): the file goes to the lake next to the
source version's, and the package reuses the source's metrics.json and inference specification.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

PROBABILITIES = "probabilities"
"""The output the score function and the promotion read (``shared.scoring.models.PROBABILITIES_OUTPUT``)."""
DEFAULT_WIDTH = 512
DEFAULT_LAYERS = 1000


def slowed(onnx_model: bytes, *, width: int = DEFAULT_WIDTH, layers: int = DEFAULT_LAYERS, seed: int = 0) -> bytes:
    """The same model with a dense branch of ``layers`` products by one ``width``-square matrix, times 0.

    ``probabilities = original + 0 · mean(tanh(W · … tanh(W · tanh(original · W₀))))``: equal scores, a cost
    per record that grows with the batch, a file of about ``width²`` floats. The branch's values stay finite
    (tanh), so the product is exactly 0.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(onnx_model)
    graph = model.graph
    original = _rename_probabilities(graph, f"{PROBABILITIES}_before_slowdown")
    rng = np.random.default_rng(seed)
    classes = 2
    initializers = [
        numpy_helper.from_array(rng.standard_normal((classes, width)).astype(np.float32), "slow_in"),
        numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), "slow_w"),
    ]
    initializers.append(numpy_helper.from_array(np.full((width, 1), 1.0 / width, dtype=np.float32), "slow_mean"))
    initializers.append(numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "slow_zero"))
    nodes = []
    current = original
    for index in range(layers + 1):
        weight = "slow_in" if index == 0 else "slow_w"
        nodes.append(helper.make_node("MatMul", [current, weight], [f"slow_mm{index}"]))
        nodes.append(helper.make_node("Tanh", [f"slow_mm{index}"], [f"slow_t{index}"]))
        current = f"slow_t{index}"
    nodes.append(helper.make_node("MatMul", [current, "slow_mean"], ["slow_column"]))
    nodes.append(helper.make_node("Mul", ["slow_column", "slow_zero"], ["slow_nothing"]))
    nodes.append(helper.make_node("Add", [original, "slow_nothing"], [PROBABILITIES]))
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    _declare_probabilities(graph, classes)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def swapped(onnx_model: bytes) -> bytes:
    """The same model with its two probability columns swapped: ``probabilities = original · [[0, 1], [1, 0]]``.

    Where the source scores ``p`` (the positive column), this one scores ``1 - p``: ``|p - (1 - p)| = |2p - 1|``,
    far from the source everywhere but near ``p = 0.5``.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(onnx_model)
    graph = model.graph
    original = _rename_probabilities(graph, f"{PROBABILITIES}_before_swap")
    swap = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    graph.initializer.append(numpy_helper.from_array(swap, "swap_columns"))
    graph.node.append(helper.make_node("MatMul", [original, "swap_columns"], [PROBABILITIES]))
    _declare_probabilities(graph, classes=2)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _rename_probabilities(graph: Any, name: str) -> str:
    """Make the nodes that produce the ``probabilities`` output produce ``name`` instead; returns ``name``."""
    if PROBABILITIES not in {o.name for o in graph.output}:
        raise ValueError(f"the model has no {PROBABILITIES!r} output")
    for node in graph.node:
        node.output[:] = [name if output == PROBABILITIES else output for output in node.output]
    return name


def _declare_probabilities(graph: Any, classes: int) -> None:
    """Make ``probabilities`` (float, ``[records, classes]``) the graph's one output (the score function reads
    only it; a label output would no longer agree with the rewritten probabilities)."""
    from onnx import TensorProto, helper

    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [None, classes]))


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def register_copy(
    *, sagemaker: Any, s3: Any, source_package_arn: str, onnx_model: bytes, run_id: str, description: str
) -> dict[str, Any]:
    """Register ``onnx_model`` as a new version of ``source_package_arn``'s group; returns its description.

    The file is written to the lake beside the source version's (``models/<usecase>/<run_id>/model.onnx``);
    the package names it, its sha256 and ``run_id`` in its metadata, and reuses the source's metrics.json.
    """
    source = sagemaker.describe_model_package(ModelPackageName=source_package_arn)
    properties = dict(source.get("CustomerMetadataProperties") or {})
    lake_bucket, _ = _split_s3_uri(source["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    source_prefix = properties["onnx_s3_key"].rsplit("/", 2)[0]
    key = f"{source_prefix}/{run_id}/model.onnx"
    s3.put_object(Bucket=lake_bucket, Key=key, Body=onnx_model)
    properties |= {
        "run_id": run_id,
        "onnx_s3_key": key,
        "onnx_sha256": hashlib.sha256(onnx_model).hexdigest(),
    }
    request: dict[str, Any] = {
        "ModelPackageGroupName": source["ModelPackageGroupName"],
        "ModelPackageDescription": description[:1000],
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": source["ModelMetrics"],
        "CustomerMetadataProperties": properties,
    }
    if "InferenceSpecification" in source:
        request["InferenceSpecification"] = source["InferenceSpecification"]
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    return dict(sagemaker.describe_model_package(ModelPackageName=arn))
