"""Compiled kernels and their thin Python entry points.

Nothing here imports the rest of skmk: estimators call these functions, never the reverse. Each
entry point checks shapes and dtypes once, allocates outputs, picks the thread count and keeps
BLAS single-threaded while the OpenMP kernel runs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import _bounded, _fjlt, _kmeans
from ._assign import assign_dense, omp_max_threads, openmp_enabled
from ._csv import parse_csv
from ._threads import single_threaded_blas

__all__ = [
    "absorb_into_means",
    "accumulate_weighted_sums",
    "bounded_nearest",
    "effective_n_threads",
    "fjlt",
    "fwht_rows",
    "gram_matrix",
    "kmeans_plusplus",
    "low_rank_coordinates",
    "merge_into_means",
    "nearest_and_two_nearest",
    "nearest_centers",
    "openmp_enabled",
    "parse_csv",
    "row_sq_norms",
    "two_nearest_centers",
]

#: Below this much work (rows × centers × features multiply-adds) a kernel runs on one thread:
#: starting an OpenMP team costs more than it saves (measured: 0.7 ms with two threads against
#: 0.19 ms with one for 1,000 × 100 × 64).
SERIAL_WORK = 1 << 24
#: The bounded search's cost is mostly its exact distances, which the work estimate above does
#: not see; it splits over the threads from this many queries (measured with warm threads,
#: 100 centers in 784 dimensions: 1,000 queries 0.3 ms on one thread and 0.2 on two; 5,000
#: queries 2.6 ms and 1.2).
BOUNDED_SERIAL_QUERIES = 512
#: What one value of X counts as in ``accumulate_weighted_sums``' work estimate (see there).
ACCUMULATE_WORK_PER_VALUE = 32

#: Rows per GEMM chunk when the caller does not say: as many as keep a thread's (rows ×
#: centers) buffer near 1 MB (L2-sized), between 64 and 1,024. Measured at 60,000 × 784:
#: k=100 predict 0.061 s with 256 rows, 0.059 s with 512; K=1000 best at 256.
DEFAULT_CHUNK_SIZE = None


def _chunk_rows(n_centers: int, chunk_size: int | None, n_rows: int = 0,
                n_threads: int = 1) -> int:
    """Rows per chunk: the caller's ``chunk_size``, else the L2-sized target, shrunk so that
    the ``n_rows`` split into a multiple of ``n_threads`` chunks. The kernels hand chunks out
    statically, so one chunk more on one thread is idle time on the other (measured: a
    5,000-row batch against 110 centers on two threads, 88 ms per epoch in five chunks of
    1,024 rows, 73 ms in six of 834)."""
    if chunk_size is not None:
        return chunk_size
    target = int(max(64, min(1024, (1 << 18) // max(n_centers, 1))))
    if n_threads <= 1 or n_rows <= 0:
        return target
    n_chunks = -(-n_rows // target)
    n_chunks = -(-n_chunks // n_threads) * n_threads
    return -(-n_rows // n_chunks)


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


def _threads_for(work: int, n_threads: int | None) -> int:
    return 1 if work < SERIAL_WORK else effective_n_threads(n_threads)


def row_sq_norms(X) -> np.ndarray:
    """Squared Euclidean norm of each row (dense or sparse), in X's dtype. Shape (n_rows,)."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1), dtype=X.dtype).ravel()
    return np.einsum("ij,ij->i", X, X)


def _csr_parts(X):
    """CSR arrays with int32 indices, the layout the kernels take."""
    X = sp.csr_matrix(X)
    return X.data, X.indices.astype(np.int32, copy=False), X.indptr.astype(np.int32, copy=False)


def nearest_centers(
    X: np.ndarray,
    centers: np.ndarray,
    *,
    centers_sq_norms: np.ndarray | None = None,
    n_threads: int | None = None,
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    distances: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Nearest center of each row and its squared Euclidean distance.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float32 or float64
        The rows to assign; sparse input is handled as CSR.
    centers : ndarray of shape (n_centers, n_features), same dtype as X, C-contiguous
        The candidate centers.
    centers_sq_norms : ndarray of shape (n_centers,), default=None
        ``(centers ** 2).sum(axis=1)``, when the caller already has it.
    n_threads : int, default=None
        OpenMP threads; None uses what OpenMP allows.
    chunk_size : int, default=None
        Rows per GEMM call; None sizes it to the number of centers.
    distances : bool, default=True
        False skips the distances (labels only, one pass over each row fewer).

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        Index of the nearest center; ties go to the lowest index.
    sq_distances : ndarray of shape (n_samples,), X's dtype, or None
        Squared distance to that center, never negative; None when ``distances`` is False.
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
    centers = np.ascontiguousarray(centers)
    if centers_sq_norms is None:
        centers_sq_norms = row_sq_norms(centers)
    centers_sq_norms = np.ascontiguousarray(centers_sq_norms, dtype=X.dtype)

    labels = np.empty(X.shape[0], dtype=np.int32)
    sq_distances = np.empty(X.shape[0], dtype=X.dtype)
    n_threads = _threads_for(X.shape[0] * centers.shape[0] * X.shape[1], n_threads)
    if sp.issparse(X):
        data, indices, indptr = _csr_parts(X)
        centers_t = np.ascontiguousarray(centers.T)
        _kmeans.assign_csr(data, indices, indptr, centers_t, centers_sq_norms, labels,
                           sq_distances, n_threads)
        return labels, sq_distances if distances else None
    _assign_blocks(np.ascontiguousarray(X), centers, centers_sq_norms, centers.shape[0],
                   (labels, sq_distances), None, None, n_threads,
                   _chunk_rows(centers.shape[0], chunk_size, X.shape[0], n_threads), distances)
    return labels, sq_distances if distances else None


def _assign_blocks(X, centers, norms, n_nearest, nearest, top_two, rows_sq_norms, n_threads,
                   chunk_size, distances=True) -> None:
    """Run ``assign_dense`` on C-contiguous dense X; ``nearest`` is (labels, sq_distances) or
    None, ``top_two`` is (top, second, sq_top, sq_second) or None, ``rows_sq_norms`` an
    output array or None."""
    no_int, no_float = np.empty(0, dtype=np.int32), np.empty(0, dtype=X.dtype)
    labels, sq_distances = nearest if nearest is not None else (no_int, no_float)
    top, second, sq_top, sq_second = top_two if top_two is not None else (
        no_int, no_int, no_float, no_float)
    with single_threaded_blas(n_threads):
        assign_dense(X, centers, norms, n_nearest, labels, sq_distances, top, sq_top, second,
                     sq_second, no_float if rows_sq_norms is None else rows_sq_norms,
                     n_threads, chunk_size, distances)


def fwht_rows(X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
    """Walsh–Hadamard transform of each row, in place, unnormalized.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 2**p), float32 or float64, C-contiguous, writable

    Returns
    -------
    X : the same array, transformed
    """
    _fjlt.fwht_rows(X, _threads_for(X.shape[0] * X.shape[1] * 8, n_threads))
    return X


def fjlt(X: np.ndarray, signs: np.ndarray, selected: np.ndarray, padded: int, *,
         n_threads: int | None = None) -> np.ndarray:
    """Subsampled randomized Hadamard transform ``(H D x)[selected] / sqrt(target)`` of each row.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    signs : ndarray of shape (n_features,), random ±1 (D)
    selected : ndarray of shape (target,), int64, distinct values < padded (S)
    padded : int
        Power of two >= n_features: the Hadamard size.

    Returns
    -------
    Y : ndarray of shape (n_samples, target), X's dtype
        Squared norms are preserved in expectation.
    """
    X = np.ascontiguousarray(X)
    out = np.empty((X.shape[0], selected.shape[0]), dtype=X.dtype)
    n_threads = _threads_for(X.shape[0] * padded * 8, n_threads)
    _fjlt.fjlt_rows(X, np.ascontiguousarray(signs, dtype=X.dtype),
                    np.ascontiguousarray(selected, dtype=np.int64),
                    X.dtype.type(1 / np.sqrt(selected.shape[0])), out, padded, n_threads)
    return out


def two_nearest_centers(X, centers: np.ndarray, *, n_threads: int | None = None):
    """The nearest and second-nearest center of each row, with squared distances.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float32 or float64
    centers : ndarray of shape (n_centers, n_features), X's dtype, n_centers >= 2

    Returns
    -------
    nearest, second : ndarray of shape (n_samples,), int32
        Center indices; ties go to the lower index.
    sq_nearest, sq_second : ndarray of shape (n_samples,), X's dtype
        Squared distances to them, never negative.
    """
    centers = np.ascontiguousarray(centers, dtype=X.dtype)
    norms = row_sq_norms(centers)
    n = X.shape[0]
    nearest, second = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
    sq_nearest, sq_second = np.empty(n, dtype=X.dtype), np.empty(n, dtype=X.dtype)
    if sp.issparse(X):
        # scipy's sparse product is single-threaded C++, so it cannot fight OpenMP or BLAS.
        scores = np.asarray(X @ (-2 * centers.T), dtype=X.dtype)
        scores += norms[None, :]
        order = np.argsort(scores, axis=1, kind="stable")[:, :2]
        nearest[:], second[:] = order[:, 0], order[:, 1]
        rows = np.arange(n)
        x_sq = row_sq_norms(X)
        sq_nearest[:] = np.maximum(scores[rows, nearest] + x_sq, 0)
        sq_second[:] = np.maximum(scores[rows, second] + x_sq, 0)
    else:
        n_threads = _threads_for(n * centers.shape[0] * X.shape[1], n_threads)
        _assign_blocks(np.ascontiguousarray(X), centers, norms, 0, None,
                       (nearest, second, sq_nearest, sq_second), None, n_threads,
                       _chunk_rows(centers.shape[0], None, n, n_threads))
    return nearest, second, sq_nearest, sq_second


def nearest_and_two_nearest(X: np.ndarray, centers: np.ndarray, others: np.ndarray, *,
                            n_threads: int | None = None):
    """Each row's nearest of ``centers`` and two nearest of ``others``, in one pass over X.

    Both sets are scored by a single GEMM per chunk of rows, so the rows are read once (the
    extra centers and the tentative centers of streaming k-means, for one batch).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64 (dense)
    centers : ndarray of shape (n_centers, n_features), X's dtype
    others : ndarray of shape (n_others, n_features), X's dtype, n_others >= 2

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        Nearest of ``centers``; ties to the lower index.
    sq_distances : ndarray of shape (n_samples,), X's dtype
    nearest, second : ndarray of shape (n_samples,), int32
        The two nearest of ``others`` (indices into ``others``).
    sq_nearest, sq_second : ndarray of shape (n_samples,), X's dtype
    rows_sq_norms : ndarray of shape (n_samples,), X's dtype
        ``||x||^2`` of each row, a by-product.
    """
    X = np.ascontiguousarray(X)
    both = np.ascontiguousarray(np.concatenate([centers, others]), dtype=X.dtype)
    n = X.shape[0]
    labels, nearest, second = (np.empty(n, dtype=np.int32) for _ in range(3))
    sq_distances, sq_nearest, sq_second, sq_norms = (np.empty(n, dtype=X.dtype)
                                                    for _ in range(4))
    n_threads = _threads_for(n * both.shape[0] * X.shape[1], n_threads)
    _assign_blocks(X, both, row_sq_norms(both), centers.shape[0], (labels, sq_distances),
                   (nearest, second, sq_nearest, sq_second), sq_norms, n_threads,
                   _chunk_rows(both.shape[0], None, n, n_threads))
    return labels, sq_distances, nearest, second, sq_nearest, sq_second, sq_norms


def accumulate_weighted_sums(
    X,
    sample_weight: np.ndarray,
    labels: np.ndarray,
    n_centers: int,
    *,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-center weighted sums of the rows assigned to each center.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,), X's dtype
    labels : ndarray of shape (n_samples,), int32, values in [0, n_centers)
    n_centers : int

    Returns
    -------
    sums : ndarray of shape (n_centers, n_features), float64
        ``sum_i w_i x_i`` over the rows labelled with each center.
    weights : ndarray of shape (n_centers,), float64
        ``sum_i w_i`` over the same rows.
    """
    sums = np.zeros((n_centers, X.shape[1]), dtype=np.float64)
    weights = np.zeros(n_centers, dtype=np.float64)
    sample_weight = np.ascontiguousarray(sample_weight, dtype=X.dtype)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    # Each element costs far more than one multiply-add of a GEMM (a float64 conversion and an
    # add into a center's sums, read back and written): two threads already pay from 1,000 rows
    # of 784 features (0.27 ms on one, 0.15 on two; 8,400 rows, a coreset: 3.1 and 1.8 ms).
    n_threads = _threads_for(X.shape[0] * X.shape[1] * ACCUMULATE_WORK_PER_VALUE, n_threads)
    if sp.issparse(X):
        data, indices, indptr = _csr_parts(X)
        _kmeans.accumulate_csr(data, indices, indptr, sample_weight, labels, sums, weights,
                               n_threads)
    else:
        _kmeans.accumulate_dense(np.ascontiguousarray(X), sample_weight, labels, sums, weights,
                                 n_threads)
    return sums, weights


def kmeans_plusplus(
    X: np.ndarray,
    sample_weight: np.ndarray,
    n_clusters: int,
    random_state: np.random.RandomState,
    *,
    n_local_trials: int | None = None,
    gram: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted greedy k-means++ seeds chosen among the rows of X.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,)
        Non-negative; a row is drawn with probability proportional to ``w * D^2``.
    n_clusters : int
        Seeds to draw, at most the number of rows with positive weight.
    random_state : numpy.random.RandomState
    n_local_trials : int, default=None
        Candidates per round; None uses ``2 + int(log(n_clusters))`` (Arthur & Vassilvitskii).
        1 is plain D² sampling.
    gram : ndarray of shape (n_samples, n_samples), X's dtype, default=None
        ``X @ X.T`` (see ``gram_matrix``): each round then reads its dot products instead of
        computing them. Worth it when several seedings share the same points.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), X's dtype
    indices : ndarray of shape (n_clusters,), int32
        Row of X each seed was taken from.
    """
    X = np.ascontiguousarray(X)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    uniforms = random_state.random_sample(1 + (n_clusters - 1) * n_local_trials)
    centers = np.empty((n_clusters, X.shape[1]), dtype=X.dtype)
    indices = np.empty(n_clusters, dtype=np.int32)
    no_gram = np.empty((0, 0), dtype=X.dtype)
    _kmeans.kmeans_plusplus(X, np.ascontiguousarray(sample_weight, dtype=X.dtype), n_clusters,
                            n_local_trials, uniforms, centers, indices,
                            no_gram if gram is None else np.ascontiguousarray(gram, X.dtype))
    return centers, indices


def gram_matrix(X: np.ndarray) -> np.ndarray:
    """``X @ X.T`` in X's dtype, shape (n_samples, n_samples), for ``kmeans_plusplus``."""
    X = np.ascontiguousarray(X)
    return X @ X.T


def merge_into_means(means: np.ndarray, slots: np.ndarray, old_weights: np.ndarray,
                     sums: np.ndarray, totals: np.ndarray, *, bounds: np.ndarray | None = None,
                     n_threads: int | None = None) -> None:
    """Fold weighted sums into running means in place (see ``_kmeans.merge_into_means``).

    Parameters
    ----------
    means : ndarray of shape (n_slots, n_features), float32 or float64, C-contiguous
    slots : ndarray of shape (n,), distinct rows of ``means``
    old_weights, totals : ndarray of shape (n,), float64
        A slot whose total is 0 keeps its mean.
    sums : ndarray of shape (n_parts, n_features), float64
        Weighted sums of the new rows: one per slot, or several when ``bounds`` is given.
    bounds : ndarray of shape (n + 1,), default=None
        Slot ``i`` receives ``sums[bounds[i]:bounds[i + 1]]``; None means one row per slot.
    """
    if bounds is None:
        bounds = np.arange(slots.shape[0] + 1)
    n_threads = _threads_for(sums.shape[0] * means.shape[1] * 4, n_threads)
    _kmeans.merge_into_means(means, np.ascontiguousarray(slots, dtype=np.int64),
                             np.ascontiguousarray(old_weights, dtype=np.float64),
                             np.ascontiguousarray(sums, dtype=np.float64),
                             np.ascontiguousarray(bounds, dtype=np.int64),
                             np.ascontiguousarray(totals, dtype=np.float64), n_threads)


def absorb_into_means(
    X: np.ndarray,
    sample_weight: np.ndarray,
    cell_of_row: np.ndarray,
    cell_slots: np.ndarray,
    cell_old_weights: np.ndarray,
    cell_totals: np.ndarray,
    cell_means: np.ndarray,
    center_slots: np.ndarray,
    cell_bounds: np.ndarray,
    center_old_weights: np.ndarray,
    center_totals: np.ndarray,
    centers: np.ndarray,
    *,
    rows_by_cell: tuple[np.ndarray, np.ndarray] | None = None,
    n_threads: int | None = None,
) -> None:
    """Fold dense rows into the running means of their cells and of the cells' centers, in
    place (see ``_kmeans.absorb_dense``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    sample_weight : ndarray of shape (n_samples,)
    cell_of_row : ndarray of shape (n_samples,), values in [0, n_cells)
        The cell each row joins; cells are numbered so that each center's cells are
        consecutive.
    cell_slots : ndarray of shape (n_cells,)
        Row of ``cell_means`` holding each cell (distinct).
    cell_old_weights, cell_totals : ndarray of shape (n_cells,), float64
        Each cell's weight before and after the batch.
    cell_means : ndarray of shape (n_slots, n_features), X's dtype, C-contiguous
        Updated in place.
    center_slots : ndarray of shape (n_hit,)
        Row of ``centers`` of each center the batch reaches (distinct).
    cell_bounds : ndarray of shape (n_hit + 1,)
        Center ``h`` owns cells ``cell_bounds[h]:cell_bounds[h + 1]``.
    center_old_weights, center_totals : ndarray of shape (n_hit,), float64
    centers : ndarray of shape (n_centers, n_features), X's dtype, C-contiguous
        Updated in place.
    rows_by_cell : tuple of ndarray, default=None
        ``(order, row_bounds)``: the rows grouped by cell, each cell's in row order (cell c
        has rows ``order[row_bounds[c]:row_bounds[c + 1]]``), if the caller has them already.
    """
    if rows_by_cell is None:
        cell_of_row = np.asarray(cell_of_row)
        order = np.argsort(cell_of_row, kind="stable")  # each cell's rows together, in order
        row_bounds = np.searchsorted(cell_of_row[order], np.arange(cell_slots.shape[0] + 1))
    else:
        order, row_bounds = rows_by_cell
    # Each row is read once, and each touched cell and center mean read and written.
    n_threads = _threads_for((X.shape[0] + 2 * cell_slots.shape[0]) * X.shape[1] * 4, n_threads)

    def index(a):
        return np.ascontiguousarray(a, dtype=np.int64)

    def real(a):
        return np.ascontiguousarray(a, dtype=np.float64)

    _kmeans.absorb_dense(np.ascontiguousarray(X), np.ascontiguousarray(sample_weight,
                                                                       dtype=X.dtype),
                         index(order), index(row_bounds), index(cell_slots),
                         real(cell_old_weights), real(cell_totals), cell_means,
                         index(center_slots), index(cell_bounds), real(center_old_weights),
                         real(center_totals), centers, n_threads)


def low_rank_coordinates(
    X: np.ndarray,
    components: np.ndarray,
    mean: np.ndarray,
    inflation: float,
    *,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows in the augmented low-rank form that ``bounded_nearest`` bounds distances with.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    components : ndarray of shape (m, n_features), X's dtype
        Orthonormal rows (a PCA basis).
    mean : ndarray of shape (n_features,), X's dtype
        The center the basis was fitted around.
    inflation : float
        Added to the squared residual as a fraction of ``||x - mean||²``: a margin for rounding.

    Returns
    -------
    low : ndarray of shape (n_samples, m + 1), X's dtype
        ``[P (x - mean), r]`` with r the (inflated) norm of the residual off the basis.
    centered_sq_norms : ndarray of shape (n_samples,), X's dtype
        ``||x - mean||²``.
    """
    X = np.ascontiguousarray(X)
    m = components.shape[0]
    low = np.empty((X.shape[0], m + 1), dtype=X.dtype)
    sq = np.empty(X.shape[0], dtype=X.dtype)
    n_threads = _threads_for(X.shape[0] * m * X.shape[1], n_threads)
    with single_threaded_blas(n_threads):
        _bounded.project_low(X, np.ascontiguousarray(components, dtype=X.dtype),
                             np.ascontiguousarray(mean, dtype=X.dtype), float(inflation), low,
                             sq, n_threads, 256)
    return low, sq


def bounded_nearest(
    Q: np.ndarray,
    Q_low: np.ndarray,
    Q_sq: np.ndarray,
    B: np.ndarray,
    B_low: np.ndarray,
    B_sq: np.ndarray,
    n_neighbors: int,
    slack: float,
    *,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact ``n_neighbors`` nearest rows of B for each row of Q, pruned by a low-rank bound.

    Parameters
    ----------
    Q : ndarray of shape (n_queries, n_features), float32 or float64
    Q_low, Q_sq : the queries' ``low_rank_coordinates``
    B : ndarray of shape (n_base, n_features), Q's dtype
    B_low, B_sq : the base rows' ``low_rank_coordinates`` (same basis)
    n_neighbors : int, at most n_base
    slack : float
        Relative allowance for rounding in the bound test (see ``skmk/_bounded_search.py``).

    Returns
    -------
    sq_distances : ndarray of shape (n_queries, n_neighbors), Q's dtype, ascending
    indices : ndarray of shape (n_queries, n_neighbors), int32
        Rows of B; among equal distances the lower index comes first.
    n_evaluated : int
        Exact distances computed (n_queries * n_base without the bound).
    """
    Q, B = np.ascontiguousarray(Q), np.ascontiguousarray(B)
    indices = np.empty((Q.shape[0], n_neighbors), dtype=np.int32)
    sq_distances = np.empty((Q.shape[0], n_neighbors), dtype=Q.dtype)
    tile = int(min(B.shape[0], 2048))
    chunk = int(max(16, min(512, (1 << 18) // tile)))
    n_threads = 1 if Q.shape[0] < BOUNDED_SERIAL_QUERIES else effective_n_threads(n_threads)
    with single_threaded_blas(n_threads):
        n_evaluated = _bounded.search(
            Q, np.ascontiguousarray(Q_low), np.ascontiguousarray(Q_sq), B,
            np.ascontiguousarray(B_low), np.ascontiguousarray(B_sq), indices, sq_distances,
            float(slack), n_threads, chunk, tile)
    return sq_distances, indices, int(n_evaluated)
