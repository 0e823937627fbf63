"""Variants of a use-case file that tests write from ``usecases/telco_churn.toml``: a switch by the file alone."""

from __future__ import annotations

XGBOOST_MODEL = {
    'estimator = "logistic_regression"': 'estimator = "xgboost"',
    "hyperparameters = { C = 1.0, max_iter = 1000 }": (
        "hyperparameters = { n_estimators = 60, max_depth = 4, learning_rate = 0.2, subsample = 0.9 }"
    ),
}
"""The Telco model as XGBoost: the estimator and its hyperparameters, nothing else."""


def with_xgboost(text: str) -> str:
    """The use-case file ``text`` with its model switched to :data:`XGBOOST_MODEL`."""
    for old, new in XGBOOST_MODEL.items():
        if old not in text:
            raise ValueError(f"the use-case file has no line {old!r} to switch")
        text = text.replace(old, new, 1)
    return text
