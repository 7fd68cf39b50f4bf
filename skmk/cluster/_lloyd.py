"""Weighted local Lloyd's: SageMaker's finalize, from weighted extra centers to k centers.

The input is small (the coreset: thousands of weighted points at most), so each trial runs
Lloyd's iterations to convergence with the compiled assignment and accumulation kernels; the
trial with the lowest weighted SSD wins.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._bounded_search import LowRankBound, NearestCenter
from .._kernels import accumulate_weighted_sums, gram_matrix, kmeans_plusplus, nearest_centers

#: Seedings share a Gram matrix of the points up to this many points (16 MB in float32).
GRAM_MAX_POINTS = 2048


@dataclass
class LloydResult:
    """The best trial of a weighted Lloyd's run.

    Attributes
    ----------
    centers : ndarray of shape (k, n_features)
    loss : float
        Weighted SSD of the coreset points to ``centers``.
    n_iter : int
        Iterations the best trial ran.
    trial_losses : list of float
        Final loss of every trial, in order.
    """

    centers: np.ndarray
    loss: float
    n_iter: int
    trial_losses: list


def weighted_lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    init_method: str,
    max_iter: int,
    tol: float,
    n_trials: int,
    random_state: np.random.RandomState,
    warm_start: np.ndarray | None = None,
    bound: LowRankBound | None = None,
    coordinates: tuple[np.ndarray, np.ndarray] | None = None,
) -> LloydResult:
    """Cluster weighted points into k centers; keep the best of ``n_trials`` seeded trials.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_features), float32 or float64
    weights : ndarray of shape (n_points,), positive
    k : int
        At most n_points.
    init_method : {"kmeans++", "random"}
        Weighted greedy k-means++, or k distinct points drawn with probability ∝ weight.
    max_iter : int
        Iterations per trial at most.
    tol : float
        A trial stops when the relative decrease of the weighted SSD falls to ``tol`` or below.
    n_trials : int
    random_state : numpy.random.RandomState
    warm_start : ndarray of shape (k, n_features), default=None
        Centers the first trial starts from (the streamed tentative centers) instead of a
        seeding; it competes with the seeded trials on loss like any other.
    bound : LowRankBound, default=None
        When given, each assignment is the exact bounded search (``assigner``).
    coordinates : tuple of ndarray, default=None
        The points' ``bound.coordinates``, if already known.
    """
    if k > points.shape[0]:
        return _too_few_points(points, weights, k)
    point_weights = np.ascontiguousarray(weights, dtype=points.dtype)
    assign = assigner(points, bound, coordinates)
    best = None
    losses = []
    starts = [None] * n_trials
    if warm_start is not None:
        starts[0] = np.ascontiguousarray(warm_start, dtype=points.dtype)
    n_seeded = sum(start is None for start in starts)
    # Several k-means++ seedings of the same few points share one Gram matrix.
    gram = gram_matrix(points) if (init_method == "kmeans++" and n_seeded > 1
                                   and points.shape[0] <= GRAM_MAX_POINTS) else None
    for start in starts:
        centers = _seed(points, point_weights, k, init_method, random_state, gram) \
            if start is None else start
        centers, loss, n_iter = lloyd_trial(points, point_weights, centers, max_iter, tol,
                                            assign)
        losses.append(loss)
        if best is None or loss < best.loss:
            best = LloydResult(centers, loss, n_iter, losses)
    best.trial_losses = losses
    return best


def _seed(points, weights, k, init_method, random_state, gram=None) -> np.ndarray:
    if init_method == "kmeans++":
        return kmeans_plusplus(points, weights, k, random_state, gram=gram)[0]
    probabilities = weights.astype(np.float64) / weights.sum()
    rows = random_state.choice(points.shape[0], k, replace=False, p=probabilities)
    return points[rows].copy()


def assigner(points: np.ndarray, bound: LowRankBound | None, coordinates=None):
    """``assign(centers) -> (labels, sq_distances)`` for the fixed ``points``: the exact
    low-rank bounded search when a bound is given (it pays with many centers in high
    dimension, see ``skmk/cluster/_state.py``; ``coordinates`` are the points' under it, if
    known), else the GEMM assignment kernel."""
    if bound is None:
        return lambda centers: nearest_centers(points, centers)
    return NearestCenter(points, bound, coordinates)


def lloyd_trial(points, weights, centers, max_iter, tol, assign=None, *, final_loss=True):
    """Lloyd's iterations from ``centers``; returns (centers, weighted SSD, iterations).

    ``assign(centers)`` gives each point's nearest center and squared distance (default: the
    GEMM assignment kernel). When the iterations run out before converging, the loss of the
    last centers costs one more assignment; ``final_loss=False`` skips it (the loss is then
    NaN) for callers that only want the centers."""
    if assign is None:
        assign = assigner(points, None)
    k = centers.shape[0]
    weights64 = weights.astype(np.float64)
    previous_loss = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        labels, sq_distances = assign(centers)
        loss = float(np.dot(weights64, sq_distances))
        if np.isfinite(previous_loss) and previous_loss - loss <= tol * previous_loss:
            return centers, loss, n_iter  # converged: the loss is that of these centers
        previous_loss = loss
        sums, cluster_weights = accumulate_weighted_sums(points, weights, labels, k)
        centers = _new_centers(points, weights, centers, sums, cluster_weights, sq_distances)
    if not final_loss:
        return centers, float("nan"), n_iter
    labels, sq_distances = assign(centers)
    return centers, float(np.dot(weights64, sq_distances)), n_iter


def _new_centers(points, weights, centers, sums, cluster_weights, sq_distances):
    """Weighted means; an emptied cluster moves to the point that costs the most."""
    filled = cluster_weights > 0
    new = centers.copy()
    new[filled] = (sums[filled] / cluster_weights[filled, None]).astype(centers.dtype)
    empty = np.flatnonzero(~filled)
    if empty.size:
        cost = weights.astype(np.float64) * sq_distances
        worst = np.argsort(cost)[::-1][: empty.size]
        new[empty] = points[worst]
    return new


def _too_few_points(points, weights, k) -> LloydResult:
    """Fewer distinct points than clusters (duplicated rows): every point is a center and the
    remaining centers repeat them, as scikit-learn's KMeans does, with a warning."""
    warnings.warn(
        f"Number of distinct clusters ({points.shape[0]}) found smaller than k ({k}); "
        "some centers are duplicates",
        ConvergenceWarning,
        stacklevel=3,
    )
    centers = np.resize(points, (k, points.shape[1])).astype(points.dtype)
    return LloydResult(centers, 0.0, 0, [0.0])
