"""The score function's EMF documents: both dimension sets in one document, buckets, bounded value arrays."""

from __future__ import annotations

import io
import json

import numpy as np

from shared.scoring import telemetry


def test_a_request_is_one_document_per_variant_with_both_dimension_sets_and_one_per_bucket() -> None:
    # Given a request scored by version 3 with some scores and 250 shadow deltas
    request = telemetry.RequestTelemetry(usecase="telco_churn")
    tally = request.tally(3, telemetry.CHAMPION)
    tally.counts[telemetry.PREDICTIONS] += 4
    tally.latency_ms = 2.5
    tally.add_scores(np.array([0.05, 0.31, 0.39, 1.0]))
    request.observe(telemetry.SCORE_DELTA, 3, telemetry.SHADOW, [0.01] * 250)
    out = io.StringIO()
    # When it is published
    telemetry.publish(request, out=out)
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    # Then the counts and latency are one document carrying both dimension sets
    main = documents[0]
    directive = main["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [list(telemetry.VARIANT_DIMENSIONS), list(telemetry.ALARM_DIMENSIONS)]
    assert (main["Predictions"], main["Latency"], main["model_version"], main["variant"]) == (4, 2.5, "3", "champion")
    assert all(m["StorageResolution"] == 1 for m in directive["Metrics"])
    # And each non-empty bucket is its own document
    buckets = {d["bucket"]: d["ScoreBucket"] for d in documents if "bucket" in d}
    assert buckets == {"0.0-0.1": 1, "0.3-0.4": 2, "0.9-1.0": 1}
    # And the deltas come in documents of at most 100 values
    deltas = [d["ScoreDelta"] for d in documents if "ScoreDelta" in d]
    assert [len(d) for d in deltas] == [100, 100, 50]


def test_counting_a_batch_of_scores_equals_counting_them_one_by_one() -> None:
    # Given scores across the range, the edges included
    scores = [*np.random.default_rng(7).random(1000).tolist(), 0.0, 0.1, 0.5, 0.9999, 1.0]
    one_by_one, batch = telemetry.VariantTally("1", "champion"), telemetry.VariantTally("1", "champion")
    # When counted each way
    for score in scores:
        one_by_one.add_score(score)
    batch.add_scores(scores)
    # Then the buckets agree
    assert batch.buckets == one_by_one.buckets
