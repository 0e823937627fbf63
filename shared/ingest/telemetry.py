"""The ingest function's metrics (powertools EMF, in the stack's namespace, by use case)."""

from __future__ import annotations

ROWS_IN = "RowsIn"
ROWS_CURATED = "RowsCurated"
ROWS_QUARANTINED = "RowsQuarantined"
OBJECTS_REJECTED = "ObjectsRejected"
DIMENSION_USECASE = "usecase"
