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


def validated_batches(estimator, source_batches, *, dtype=None, finite_in_stream=False):
    """Check each batch of a file source as ``fit`` checks in-memory data.

    The first batch fixes the number of features (and, unless ``dtype`` is given, the float
    dtype); a later batch with another width raises a ``ValueError`` naming both. With
    ``finite_in_stream`` dense batches are not checked for NaN and infinity here: the caller's
    streaming state checks them as it reads them (``KMeansState.update``).
    """
    import scipy.sparse as sp
    from sklearn.utils import check_array

    n_features = None
    for number, batch in enumerate(source_batches):
        X = check_array(batch.X, accept_sparse="csr", dtype=dtype or [np.float64, np.float32],
                        order="C", accept_large_sparse=False,
                        ensure_all_finite=not finite_in_stream or sp.issparse(batch.X),
                        estimator=type(estimator).__name__)
        if n_features is None:
            n_features, dtype = X.shape[1], dtype or X.dtype
        elif X.shape[1] != n_features:
            raise ValueError(f"batch {number} of the source has {X.shape[1]} features, the first "
                             f"batch has {n_features}")
        yield Batch(X, batch.y, batch.sample_weight)


def results_per_batch(estimator, location, method, *, batch_size: int):
    """``method`` applied to each batch of a features-only source: an iterator of results.

    What ``predict``/``transform`` return for a source, so that predictions on data larger than
    memory stream out batch by batch (write them where they belong as they come).
    """
    from ._sources import source_for_estimator

    source = source_for_estimator(location, batch_size=batch_size)
    for batch in validated_batches(estimator, source.batches()):
        yield method(batch.X)
