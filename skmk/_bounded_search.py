"""Exact nearest-neighbour search that skips most distances: a low-rank (PCA) lower bound.

Brute-force search computes every query–candidate distance, a GEMM in the full dimension. For
data whose variance lives mostly in a few directions (images, embeddings, the extra centers of
k-means), a PCA basis of m ≪ d directions bounds every distance from below with a GEMM in m + 1
dimensions, and only candidates whose bound beats the current k-th best need their exact
distance (``skmk/_kernels/_bounded.pyx`` has the inequality). The answer is the same as brute
force — exact neighbours, exact distances — at a fraction of the arithmetic.

Used by ``ApproxKNN`` (the faiss.Flat search for L2 and cosine) and ``StreamingKMeans`` (the
assignment of each mini-batch to thousands of extra centers).
"""

from __future__ import annotations

import numpy as np

from ._kernels import bounded_nearest, low_rank_coordinates

__all__ = ["BoundedSearch", "LowRankBound", "NearestCenter"]

#: Rows of the base the PCA basis is fitted on; more hardly changes the top directions.
BASIS_ROWS = 4096


class LowRankBound:
    """A PCA basis and the rounding margins that keep its distance bound a true lower bound.

    Parameters
    ----------
    components : ndarray of shape (m, n_features)
        Orthonormal rows.
    mean : ndarray of shape (n_features,)
    """

    def __init__(self, components: np.ndarray, mean: np.ndarray):
        self.components = components
        self.mean = mean
        m, d = components.shape
        u = np.finfo(components.dtype).eps / 2  # unit roundoff
        # r² = ||x̃||² - ||Px̃||²: the projection's rounding error is at most d·u·||x̃|| per
        # coordinate (Cauchy–Schwarz with unit rows), so ||Px̃||² is off by at most
        # 2·d·u·sqrt(m)·||x̃||²; the sum of squares adds about (d/16 + 16)·u.
        self.inflation = float(u * (2 * d * np.sqrt(m) + d / 16 + 16))
        # The bound test: the GEMM over m + 1 terms, the norms' sums, and the exact distance's
        # own rounding, all relative to ||q̃||² + ||x̃||² (a safe multiple of each).
        self.slack = float(u * (2 * (m + 1) + d / 4 + 64))

    @classmethod
    def fit(cls, X: np.ndarray, n_components: int, random_state: np.random.RandomState, *,
            max_rows: int = BASIS_ROWS) -> LowRankBound:
        """The top ``n_components`` principal directions of (a sample of) X.

        A randomized range finder with one power iteration on at most ``max_rows`` rows. The
        bound stays valid for any orthonormal basis, so an approximate PCA costs only a little
        tightness: the range finding runs in X's dtype, and only the final small SVD, which
        makes the rows orthonormal, in float64.
        """
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        if X.shape[0] > max_rows:
            X = X[np.sort(random_state.choice(X.shape[0], max_rows, replace=False))]
        X = np.asarray(X, dtype=dtype)
        mean = X.mean(axis=0, dtype=np.float64)
        centered = X - mean.astype(dtype)
        n_components = min(n_components, *centered.shape)
        gaussian = random_state.standard_normal((X.shape[1], n_components + 8)).astype(dtype)
        sketch = np.linalg.qr(centered @ (centered.T @ (centered @ gaussian)))[0]
        small = (sketch.T @ centered).astype(np.float64)
        _, _, vt = np.linalg.svd(small, full_matrices=False)
        return cls(np.ascontiguousarray(vt[:n_components], dtype=dtype), mean.astype(dtype))

    def astype(self, dtype) -> LowRankBound:
        return LowRankBound(self.components.astype(dtype), self.mean.astype(dtype))

    def coordinates(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(low, centered_sq_norms)`` of each row: shapes (n, m + 1) and (n,), X's dtype."""
        bound = self if X.dtype == self.components.dtype else self.astype(X.dtype)
        return low_rank_coordinates(X, bound.components, bound.mean, bound.inflation)


class BoundedSearch:
    """Exact k nearest rows of a fixed base, with the base's low-rank coordinates kept.

    Parameters
    ----------
    base : ndarray of shape (n_base, n_features), float32 or float64, C-contiguous
    bound : LowRankBound
        Fitted on rows like the base's (any orthonormal basis is correct; PCA is fast).

    Attributes
    ----------
    n_evaluated : int
        Exact distances computed by the last ``search``.
    """

    def __init__(self, base: np.ndarray, bound: LowRankBound):
        self.base = np.ascontiguousarray(base)
        self.bound = bound.astype(self.base.dtype)
        self.base_low, self.base_sq = self.bound.coordinates(self.base)
        self.n_evaluated = 0

    def search(self, Q: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact nearest base rows of each query.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features), the base's dtype
        n_neighbors : int, at most n_base

        Returns
        -------
        sq_distances : ndarray of shape (n_queries, n_neighbors), ascending
        indices : ndarray of shape (n_queries, n_neighbors), int32; ties to the lower index
        """
        Q = np.ascontiguousarray(Q, dtype=self.base.dtype)
        low, sq = self.bound.coordinates(Q)
        sq_distances, indices, self.n_evaluated = bounded_nearest(
            Q, low, sq, self.base, self.base_low, self.base_sq, n_neighbors, self.bound.slack)
        return sq_distances, indices


class NearestCenter:
    """Nearest of a changing set of centers, for a fixed set of rows (Lloyd's iterations, a
    mini-batch against extra and tentative centers).

    The rows' low-rank coordinates are computed once; each call bounds them against the new
    centers' coordinates and computes only the few exact distances the bound cannot rule out.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features), float32 or float64
    bound : LowRankBound
    coordinates : tuple of ndarray, default=None
        The rows' ``bound.coordinates``, if an earlier search already computed them.
    """

    def __init__(self, rows: np.ndarray, bound: LowRankBound, coordinates=None):
        self.rows = np.ascontiguousarray(rows)
        self.bound = bound.astype(self.rows.dtype)
        self.rows_low, self.rows_sq = self.bound.coordinates(self.rows) \
            if coordinates is None else coordinates

    def nearest(self, centers: np.ndarray, n_nearest: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_nearest`` nearest centers of each row: squared distances (ascending) and
        indices (int32, ties to the lower index), each of shape (n_rows, n_nearest)."""
        centers = np.ascontiguousarray(centers, dtype=self.rows.dtype)
        centers_low, centers_sq = self.bound.coordinates(centers)
        sq_distances, indices, _ = bounded_nearest(
            self.rows, self.rows_low, self.rows_sq, centers, centers_low, centers_sq,
            n_nearest, self.bound.slack)
        return sq_distances, indices

    def __call__(self, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest center of each row (int32) and the squared distance to it, both of shape
        (n_rows,): the assignment Lloyd's iterations take."""
        sq_distances, indices = self.nearest(centers, 1)
        return indices[:, 0], sq_distances[:, 0]
