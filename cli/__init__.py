"""The platform CLI: what serves, and changing it (``python -m cli --help``)."""
