"""Compiled kernels and their thin Python entry points.

Nothing here imports the rest of skmk: estimators call these functions, never the reverse. Each
entry point checks shapes and dtypes once, allocates outputs, picks the thread count and keeps
BLAS single-threaded while the OpenMP kernel runs.
"""

from __future__ import annotations

import numpy as np

from ._assign import assign_dense, omp_max_threads, openmp_enabled
from ._threads import single_threaded_blas

__all__ = ["effective_n_threads", "nearest_centers", "openmp_enabled", "row_sq_norms"]

#: Rows per GEMM chunk: 256 rows x up to a few thousand centers keeps each thread's buffer in L2.
DEFAULT_CHUNK_SIZE = 256


def effective_n_threads(n_threads: int | None = None) -> int:
    """Threads a kernel will use: ``n_threads`` if given, else what OpenMP allows right now.

    OpenMP's own limit follows ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits``, so a
    user who limits threads the usual way limits skmk too.
    """
    available = omp_max_threads()
    if n_threads is None:
        return available
    if n_threads < 0:  # joblib convention: -1 = all, -2 = all but one
        return max(available + 1 + n_threads, 1)
    return max(min(int(n_threads), available), 1)


def row_sq_norms(X: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of each row, in X's dtype. Shape (n_rows,)."""
    return np.einsum("ij,ij->i", X, X)


def nearest_centers(
    X: np.ndarray,
    centers: np.ndarray,
    *,
    centers_sq_norms: np.ndarray | None = None,
    n_threads: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest center of each row and its squared Euclidean distance.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
        The rows to assign.
    centers : ndarray of shape (n_centers, n_features), same dtype as X, C-contiguous
        The candidate centers.
    centers_sq_norms : ndarray of shape (n_centers,), default=None
        ``(centers ** 2).sum(axis=1)``, when the caller already has it.
    n_threads : int, default=None
        OpenMP threads; None uses what OpenMP allows.
    chunk_size : int, default=256
        Rows per GEMM call.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        Index of the nearest center; ties go to the lowest index.
    sq_distances : ndarray of shape (n_samples,), X's dtype
        Squared distance to that center, never negative.
    """
    if X.dtype != centers.dtype or X.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"X and centers must share a float32 or float64 dtype, got {X.dtype} and "
            f"{centers.dtype}"
        )
    if X.ndim != 2 or centers.ndim != 2 or X.shape[1] != centers.shape[1]:
        raise ValueError(
            f"X {X.shape} and centers {centers.shape} must be 2-D with the same number of columns"
        )
    if centers.shape[0] == 0:
        raise ValueError("centers must hold at least one row")
    X = np.ascontiguousarray(X)
    centers = np.ascontiguousarray(centers)
    if centers_sq_norms is None:
        centers_sq_norms = row_sq_norms(centers)
    centers_sq_norms = np.ascontiguousarray(centers_sq_norms, dtype=X.dtype)

    labels = np.empty(X.shape[0], dtype=np.int32)
    sq_distances = np.empty(X.shape[0], dtype=X.dtype)
    n_threads = effective_n_threads(n_threads)
    with single_threaded_blas(n_threads):
        assign_dense(X, centers, centers_sq_norms, labels, sq_distances, n_threads, chunk_size)
    return labels, sq_distances
