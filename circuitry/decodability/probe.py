"""Cross-validated linear and nearest-neighbour probes with a shuffled-label permutation test.

Written in numpy (no scikit-learn dependency). Two classifiers:

* ``"ridge"`` (default): a ridge-regression classifier, the usual linear probe in closed form. In each
  fold the features are standardized with the training fold's mean and standard deviation, the one-hot
  labels (centred) are regressed on them, ``W = (X^T X + lam * n * I)^{-1} X^T Y``, and a held-out prompt
  gets the class with the largest output. Because ``W`` is linear in ``Y``, the shuffled-label refits
  reuse the same matrix: a permutation test with hundreds of shuffles costs one solve per fold.
* ``"knn"``: ``k``-nearest neighbours by cosine similarity of the standardized features, majority vote
  (ties to the nearest).

Folds are random and seeded, the same for the observed and every shuffled labelling, so every held-out
prompt is predicted by a probe that never saw it. They are deliberately *not* stratified by class: a
permutation test is exact only when the folds do not depend on the labels. Folds stratified on the true
labels are unbalanced for shuffled ones, which lowers the shuffled accuracies: with k-NN the test then
rejected 8.3 % of null experiments at 5 % (``tests/decodability/test_calibration.py``). The **shuffled-label
baseline** refits the same probe on labels permuted across prompts (the
same permutation in every fold) and records the cross-validated accuracy; the p-value of the observed
accuracy is ``(1 + #{shuffled >= observed}) / (1 + n_permutations)`` (one-sided, the permutation test's
usual correction; Phipson & Smyth 2010).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from circuitry.errors import InputError, bad_value

Classifier = Literal["ridge", "knn"]
"""``"ridge"``: ridge-regression linear probe; ``"knn"``: k-nearest neighbours (cosine)."""


def random_folds(n: int, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test-index arrays of ``n_folds`` folds of ``n`` prompts, drawn without looking at the labels (so a
    shuffled-label test with the same folds is exact; module docstring)."""
    return [np.sort(f) for f in np.array_split(rng.permutation(n), n_folds)]


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def _knn_predict(tr: np.ndarray, ytr: np.ndarray, te: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    a = tr / np.maximum(np.linalg.norm(tr, axis=1, keepdims=True), 1e-12)
    b = te / np.maximum(np.linalg.norm(te, axis=1, keepdims=True), 1e-12)
    near = np.argsort(-(b @ a.T), axis=1)[:, :k]
    votes = np.zeros((len(te), n_classes))
    for r in range(k):  # nearer neighbours break ties: weight 1 + tiny decreasing bonus
        votes[np.arange(len(te)), ytr[near[:, r]]] += 1.0 + 1e-6 * (k - r)
    return votes.argmax(1)


def cv_accuracy(X: np.ndarray, y: np.ndarray, *, classifier: Classifier = "ridge", n_folds: int = 5,
                n_permutations: int = 1000, ridge: float = 1.0, k: int = 5, seed: int = 0) -> dict:
    """Cross-validated accuracy of decoding ``y`` from ``X``, with its shuffled-label null.

    Parameters
    ----------
    X
        ``[n, d]`` features (one prompt per row).
    y
        ``[n]`` integer class labels ``0..C-1``.
    classifier, n_folds, ridge, k
        The probe (module docstring), the folds, the ridge penalty (times ``n``), the neighbours.
    n_permutations
        Shuffled-label refits for the null (0: none).
    seed
        Seeds the folds and the shuffles.

    Returns
    -------
    dict
        ``accuracy``, ``per_class_recall [C]``, ``predictions [n]``, ``null [n_permutations]``
        (shuffled-label accuracies) and ``pvalue``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30); X = rng.normal(size=(60, 5)); X[:, 0] += 3 * y
    >>> r = cv_accuracy(X, y, n_permutations=50)
    >>> bool(r["accuracy"] > 0.9 and r["pvalue"] < 0.05 and abs(np.mean(r["null"]) - 0.5) < 0.1)
    True
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise InputError(f"X has shape {X.shape} and y {y.shape}; expected [n, d] and [n]")
    if classifier not in ("ridge", "knn"):
        raise bad_value("classifier", classifier, "'ridge' or 'knn'")
    C = int(y.max()) + 1
    counts = np.bincount(y, minlength=C)
    if C < 2 or counts.min() < n_folds:
        raise bad_value("n_prompts", f"{counts.min()} prompts in the smallest task",
                        f"at least n_folds={n_folds} prompts in each of >= 2 tasks")
    from circuitry.stats._common import procedure_seed

    # folds and label shuffles draw from their own streams, fixed by the seed and their names
    folds = random_folds(len(y), n_folds, np.random.default_rng(procedure_seed(seed, "decodability/folds")))
    shuffle = np.random.default_rng(procedure_seed(seed, "decodability/shuffles"))
    perms = [shuffle.permutation(len(y)) for _ in range(n_permutations)]
    labels = np.stack([y] + [y[p] for p in perms])  # [1 + P, n]: observed, then shuffled
    pred = np.empty_like(labels)
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        tr, te = _standardize(X[train], X[test])
        if classifier == "ridge":
            A = tr.T @ tr + ridge * len(train) * np.eye(tr.shape[1])
            M = te @ np.linalg.solve(A, tr.T)  # [n_test, n_train]: predictions are linear in the labels
            lab = labels[:, train].T  # [n_train, 1 + P]
            Y = np.zeros((*lab.shape, C))
            Y[np.arange(lab.shape[0])[:, None], np.arange(lab.shape[1])[None, :], lab] = 1.0
            # M @ (Y - mean_n Y) in one product: M @ Y - rowsum(M) * mean_n Y
            out = (M @ Y.reshape(len(train), -1)).reshape(len(test), *Y.shape[1:])
            out -= M.sum(1)[:, None, None] * Y.mean(0)[None]
            pred[:, test] = out.argmax(-1).T
        else:
            for i in range(labels.shape[0]):
                pred[i, test] = _knn_predict(tr, labels[i, train], te, k, C)
    correct = pred == labels
    acc = correct.mean(1)
    recall = np.array([correct[0, y == c].mean() for c in range(C)])
    null = acc[1:]
    p = float((1 + np.sum(null >= acc[0])) / (1 + len(null))) if len(null) else float("nan")
    return {"accuracy": float(acc[0]), "per_class_recall": recall, "predictions": pred[0], "null": null, "pvalue": p}
