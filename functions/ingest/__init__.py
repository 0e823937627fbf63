"""The ingest function: an upload to the raw bucket → validated rows in the lake."""
