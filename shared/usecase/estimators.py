"""The estimators a use case may name, and the hyperparameters each accepts: a pure constant.

Use-case files are validated against this at load time (:class:`shared.usecase.settings.ModelSettings`),
so an unsupported estimator or a misspelt hyperparameter fails when the file is read, not after
an hour of training. It holds names only (no scikit-learn import: Lambda code reads it); the
training package maps each name to its class, and a unit test checks the two agree. Every estimator
here must be convertible to ONNX (the scoring function runs ONNX): scikit-learn's by skl2onnx, XGBoost's
by onnxmltools.
"""

from __future__ import annotations

from types import MappingProxyType

_TREE = frozenset(
    {
        "ccp_alpha",
        "class_weight",
        "criterion",
        "max_depth",
        "max_features",
        "max_leaf_nodes",
        "min_impurity_decrease",
        "min_samples_leaf",
        "min_samples_split",
        "min_weight_fraction_leaf",
        "random_state",
    }
)
_FOREST = _TREE | {"bootstrap", "max_samples", "n_estimators", "n_jobs", "oob_score", "verbose", "warm_start"}

_XGBOOST = frozenset(
    {
        "base_score",
        "colsample_bylevel",
        "colsample_bynode",
        "colsample_bytree",
        "gamma",
        "grow_policy",
        "learning_rate",
        "max_bin",
        "max_delta_step",
        "max_depth",
        "max_leaves",
        "min_child_weight",
        "n_estimators",
        "n_jobs",
        "num_parallel_tree",
        "random_state",
        "reg_alpha",
        "reg_lambda",
        "sampling_method",
        "scale_pos_weight",
        "subsample",
        "validate_parameters",
        "verbosity",
    }
)
"""``xgboost.XGBClassifier``'s hyperparameters a use case may set. Training sets ``device`` (the GPU when the
container has one), ``tree_method`` ("hist") and ``objective`` (binary:logistic) itself; ``booster`` (gbtree
only: ONNX converts trees) and the fit-time ones (callbacks, early stopping, categorical data) are not offered."""

SUPPORTED_ESTIMATORS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "logistic_regression": frozenset(
            {
                "C",
                "class_weight",
                "dual",
                "fit_intercept",
                "intercept_scaling",
                "l1_ratio",
                "max_iter",
                "n_jobs",
                "penalty",
                "random_state",
                "solver",
                "tol",
                "verbose",
                "warm_start",
            }
        ),
        "random_forest": _FOREST,
        "extra_trees": _FOREST,
        "gradient_boosting": (_TREE - {"class_weight"})
        | {
            "learning_rate",
            "loss",
            "n_estimators",
            "n_iter_no_change",
            "subsample",
            "tol",
            "validation_fraction",
            "verbose",
            "warm_start",
        },
        "decision_tree": _TREE | {"splitter"},
        "xgboost": _XGBOOST,
    }
)
"""Estimator name (as a use case writes it) → the hyperparameter names it accepts."""

RESERVED_HYPERPARAMETERS = frozenset({"code_version", "training_job_name", "cutoff"})
"""Hyperparameters the training job reads for itself (lineage), never passed to the estimator."""


def unknown_hyperparameters(estimator: str, names: set[str] | frozenset[str]) -> list[str]:
    """The names in ``names`` that ``estimator`` does not accept (reserved names are always accepted)."""
    accepted = SUPPORTED_ESTIMATORS[estimator] | RESERVED_HYPERPARAMETERS
    return sorted(set(names) - accepted)
