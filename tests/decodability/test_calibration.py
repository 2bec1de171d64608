"""The decodability permutation test holds its level when the features carry nothing about the task."""

import numpy as np
import pytest
from scipy import stats as sst

from circuitry.decodability.probe import cv_accuracy


@pytest.mark.slow
@pytest.mark.parametrize("classifier", ["ridge", "knn"])
def test_permutation_pvalue_is_calibrated_under_the_null(classifier):
    g = np.random.default_rng(1)
    runs, hits = 300, 0
    for r in range(runs):
        X = g.standard_normal((40, 6))
        y = np.repeat([0, 1, 2, 3], 10)
        res = cv_accuracy(X, y, classifier=classifier, n_permutations=99, seed=r)
        hits += res["pvalue"] <= 0.05
    # (1 + #{shuffled >= observed}) / (1 + 99) is exact under exchangeable labels: its size is at most 0.05
    assert hits / runs <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / runs)
    assert sst.binomtest(int(hits), runs, 0.05).pvalue > 0.001
