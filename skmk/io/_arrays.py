"""Mini-batches of in-memory data (dense arrays and scipy sparse matrices)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._streaming import Batch


def iter_array_batches(
    X,
    y: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    *,
    batch_size: int,
    order: np.ndarray | None = None,
) -> Iterator[Batch]:
    """Yield consecutive row slices of ``X`` (and ``y``, ``sample_weight``) as batches.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Already validated data. Dense slices are views; CSR slices are cheap.
    y, sample_weight : ndarray of shape (n_samples,), default=None
    batch_size : int
        Rows per batch (the last batch may be shorter).
    order : ndarray of shape (n_samples,), default=None
        A permutation to visit the rows in (e.g. shuffling between epochs); each batch then
        gathers its rows, a copy of at most ``batch_size`` rows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_samples = X.shape[0]
    for start in range(0, n_samples, batch_size):
        rows = slice(start, min(start + batch_size, n_samples))
        if order is not None:
            rows = order[rows]
        yield Batch(
            X[rows],
            None if y is None else y[rows],
            None if sample_weight is None else sample_weight[rows],
        )
