"""Human review as a measured process: routing with reasons and inclusion probabilities, a queue of items with
leased claims and k reviewers, decisions that become feedback labels with provenance, and operating metrics.

- :mod:`~shared.review.routing` — pure: which rules send a prediction to review, its inclusion probability,
  its priority;
- :mod:`~shared.review.queue` — pure: the item's life (open → claimed → decided; expired past the SLA) as
  transition functions on :class:`~shared.review.types.ReviewItem`;
- :mod:`~shared.review.adapters` — the DynamoDB table of items and the lake reader of alerted segments;
- :mod:`~shared.review.service` — :class:`~shared.review.service.ReviewService`: intake, next, claim, decide,
  stats, the entry points a handler calls;
- :mod:`~shared.review.stats` and :mod:`~shared.review.telemetry` — operating metrics and their names.
"""
