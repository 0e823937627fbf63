"""The base of every error the domain library raises, and the cross-cutting ones.

Each stage keeps its own errors in its package's ``exceptions`` module (``shared.usecase.exceptions``,
``shared.lake.exceptions``, ``shared.ingest.exceptions``, ``shared.training.exceptions``,
``shared.registry.exceptions``, ``shared.deployment.exceptions``, ``shared.scoring.exceptions``,
``shared.promotion.exceptions``). Adapters wrap SDK errors in these (``raise ... from exc``).
"""


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""


class SettingsError(SluiceError):
    """A function's environment is missing a variable or holds an invalid value."""
