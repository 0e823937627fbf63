"""Production monitoring: is the live model still the model we validated?

:mod:`statistics` is the pure, numpy-only statistics core the monitor Lambda runs on (no scipy, pandas or
scikit-learn at runtime): distribution drift (PSI, chi-square homogeneity, two-sample Kolmogorov-Smirnov),
metrics with labels and their intervals (AUC with DeLong variance, Brier, ECE, Wilson rates, Spiegelhalter),
tests of a window against the training holdout's summary, Benjamini-Hochberg q-values, the sample size a
test needs, and confidence-based performance estimation (CBPE) when labels have not arrived yet.

:mod:`cells` turns one window's tests into verdicts: every (feature | segment, metric, window) cell is one
member of a single family whose false discovery rate is controlled with Benjamini-Hochberg, and a cell with
fewer rows than its test needs reports ``insufficient evidence`` (and the n it would need) instead of a verdict.
"""
