"""Batch prediction: score whole objects (a prefix or a manifest of objects) through the API's engine.

A job is three pure steps and their adapters, so a Step Functions Distributed Map (or a test, or a laptop)
can drive it:

1. :func:`shared.batch.planning.plan_job` — the request and the object listing → a :class:`JobPlan`: the
   model pinned (champion or a named version), each object cut into :class:`Chunk` s (text: byte ranges
   aligned to lines; Parquet: row groups; gzip: one chunk per object), each with a deterministic key.
2. :func:`shared.batch.worker.score_chunk` — one chunk → scores (Parquet), rejected rows (JSON Lines),
   prediction-log lines (marked ``source: batch``) and a :class:`ChunkResult`; a chunk that cannot be scored
   raises :class:`~shared.batch.exceptions.ChunkFailedError` with the reason.
3. :func:`shared.batch.manifest.fold_manifest` — chunk results and failures → the :class:`JobManifest`
   (rows in = scored + rejected, failed chunks and why, the tolerance verdict).

Every output key (:mod:`shared.lake.layout`) holds the chunk key, so re-running or redriving a job overwrites
instead of duplicating. See ``docs/batch.md`` for each bad input's outcome.
"""
