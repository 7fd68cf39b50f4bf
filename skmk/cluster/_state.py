"""The streamed state of SageMaker's k-means: weighted extra centers and their coreset.

While data streams by, the state keeps ``n_extra = k * center_factor`` extra centers, each the
running weighted mean of the rows it has absorbed (SageMaker's algorithm). The local Lloyd's
finalize (``_lloyd.py``) clusters a weighted summary of those rows into ``k`` centers, for any
``k``, without reading the data again.

The summary (the *coreset*) is finer than the extra centers alone. Treating each extra center's
rows as one point mass at their mean misplaces the rows of a group that straddles a boundary
between two final clusters; on Fashion-MNIST at k=100 that alone costs about 2 % of SSD. So the
state also keeps *tentative final centers* — the finalize of the coreset so far, refreshed after
every batch with a few warm-started Lloyd iterations — and splits each extra center's rows by the
tentative cluster they fall in. The coreset is the set of these (extra center, tentative
cluster) cells: each stores the weighted sum of its rows, their weight and their weighted sum of
squared norms, which is enough for exact means and for the within-cell scatter.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils import assert_all_finite

from .._bounded_search import LowRankBound, NearestCenter
from .._kernels import (
    absorb_into_means,
    accumulate_weighted_sums,
    kmeans_plusplus,
    merge_into_means,
    nearest_and_two_nearest,
    nearest_centers,
    row_sq_norms,
    two_nearest_centers,
)
from .._streaming import Batch, StreamingState
from ._lloyd import assigner, lloyd_trial, weighted_lloyd

#: A center whose weight falls below this fraction of the mean center weight has stopped
#: receiving points (or decayed away) and is re-seeded; see ``KMeansState._reseed_starved``.
STARVED_WEIGHT_FRACTION = 1e-3
#: Warm-started Lloyd iterations that refresh the tentative centers (``_refresh_tentative``).
TENTATIVE_REFRESH_ITER = 2
#: The tentative centers are refreshed after each of this many first batches, then less often.
#: Measured on Fashion-MNIST, seeds 0-3, against refreshing after every batch: k=100 fit
#: 0.86x the time at 1.0006x the SSD (every second batch: 0.89x, 1.0005x); k=10 unchanged.
TENTATIVE_EVERY_BATCH = 4
#: Seeded trials for the first tentative centers (on the first batch's extra centers).
FIRST_TENTATIVE_TRIALS = 3
#: A row whose squared distances to its two nearest tentative centers differ by less than this
#: fraction lies near their boundary; such rows get a cell of their own per runner-up center.
#: Measured on Fashion-MNIST at k=100: 0 (no boundary cells) 1.37 % above scikit-learn's SSD,
#: 0.1 and 0.3 both 0.8 %, 0.1 with fewer cells (docs/kmeans.md).
BOUNDARY_MARGIN = 0.1
#: Dense rows find their nearest of many centers by the exact low-rank bounded search
#: (``skmk/_bounded_search.py``) when there are at least this many extra centers in at least
#: ``BOUNDED_MIN_DIM`` dimensions: a PCA basis of ``BOUNDED_COMPONENTS`` directions, fitted on
#: the first batch, bounds every row–center distance, and only a handful per row are computed in
#: full (Fashion-MNIST, 1,000 extra centers: about 14 of 1,000). The assignments are the same.
#: Below it one GEMM pass scores the extra and the tentative centers together, which measured
#: faster at 100 extra centers (k=10 on Fashion-MNIST, one thread: 0.26 s against 0.29 s).
BOUNDED_MIN_CENTERS = 200
#: Once the batch has low-rank coordinates, the bound also serves every other search of at
#: least this many centers: the tentative top two and the local Lloyd's. Fashion-MNIST, one
#: thread, 100 tentative centers: top two of a 5,000-row batch 3.5 ms against the GEMM's
#: 10 ms, a warm refresh on the 8,400-cell coreset 22 ms against 35; whole fits 0.91 s against
#: 1.20 s (k=100) and 0.38 s against 0.42 s (k=30) with the bound for the extra centers only.
BOUNDED_MIN_SHARED = 16
BOUNDED_MIN_DIM = 128
BOUNDED_COMPONENTS = 32
BOUNDED_BASIS_ROWS = 2048
#: The in-memory fit keeps each batch's low-rank row coordinates, up to this many bytes, for
#: labelling the same rows after the finalize (``label_kept_rows``): the bounded search then
#: skips the projection, and labelling Fashion-MNIST at k=100 takes 17 ms instead of the
#: GEMM pass's 60 ms (8 MB of coordinates). Rows past the budget are projected again.
KEPT_COORDINATES_MAX_BYTES = 64 * 2**20


class KMeansState(StreamingState):
    """Weighted extra centers and the coreset cells they split into, updated batch by batch.

    Parameters
    ----------
    k : int
        Final clusters (the tentative centers that split the coreset cells number ``k``).
    n_extra : int
        Extra centers to keep (``k * center_factor``).
    n_features : int
    dtype : numpy dtype
        float32 or float64; centers are kept in it, sums in float64.
    init_method : {"random", "kmeans++"}
        How the extra centers are drawn from the first rows seen.
    half_life : int
        ``half_life_time_size``: after this many further rows a row's weight is halved
        (0 = no decay).
    random_state : numpy.random.RandomState
        Owned by the state from now on (initialization and re-seeding draw from it).

    Attributes
    ----------
    centers : ndarray of shape (n_extra, n_features) or None
        Extra centers; None until ``n_extra`` rows have been seen.
    weights : ndarray of shape (n_extra,), float64
        Weight absorbed by each extra center, decayed.
    tentative : ndarray of shape (k, n_features) or None
        Tentative final centers.
    n_seen : float
        Rows absorbed (not decayed).
    n_reseeded : int
        Re-seeding events so far.
    """

    #: See ``keep_row_coordinates``; a class-level default, so that states pickled before it
    #: existed still load.
    _kept_rows = None

    def __init__(self, k, n_extra, n_features, dtype, init_method, half_life, random_state):
        self.k = int(k)
        self.n_extra = int(n_extra)
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        self.init_method = init_method
        self.half_life = int(half_life)
        self.random_state = random_state
        self.centers: np.ndarray | None = None
        self.weights = np.zeros(self.n_extra, dtype=np.float64)
        self.tentative: np.ndarray | None = None
        self.n_seen = 0.0
        self.n_reseeded = 0
        self._n_batches = 0
        # Each extra center's current generation id: a re-seeded center starts a new group,
        # so its new rows never share a cell with the rows it held before.
        self._group_ids = np.arange(self.n_extra, dtype=np.int64)
        self._next_group_id = self.n_extra
        # np.zeros maps untouched pages lazily, so a generous capacity costs memory only as cells
        # are used, and avoids the copy-on-grow peak.
        self._cells = _Cells(self.n_features, self.dtype, capacity=16 * max(self.n_extra, 1))
        self._pending: list[Batch] = []  # rows held until n_extra of them can seed the centers
        self._bound: LowRankBound | None = None  # see BOUNDED_MIN_CENTERS
        self._kept_rows: _KeptCoordinates | None = None  # see keep_row_coordinates

    # -- initialize ------------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return self.centers is not None

    def _initialize(self, batch: Batch) -> None:
        """Draw the extra centers from the rows of ``batch`` (which holds at least n_extra)."""
        X = _dense(batch.X)
        weight = _weights_of(batch, self.dtype)
        if self.init_method == "kmeans++":
            # Plain D² sampling: one candidate per round is SageMaker's seeding and stays cheap
            # at thousands of extra centers.
            centers, _ = kmeans_plusplus(X, weight, self.n_extra, self.random_state,
                                         n_local_trials=1)
        else:
            positive = np.flatnonzero(weight > 0)
            rows = self.random_state.choice(positive, self.n_extra,
                                            replace=positive.size < self.n_extra)
            centers = X[np.sort(rows)]
        self.centers = np.ascontiguousarray(centers, dtype=self.dtype)
        if (not sp.issparse(batch.X) and self.n_features >= BOUNDED_MIN_DIM
                and self.n_extra >= BOUNDED_MIN_CENTERS):
            # Its own seed: the basis changes only speed (the search is exact), so it must not
            # draw from the state's random stream and change the clustering.
            self._bound = LowRankBound.fit(X, BOUNDED_COMPONENTS, np.random.RandomState(0),
                                           max_rows=BOUNDED_BASIS_ROWS)

    # -- update ----------------------------------------------------------------------------------

    def update(self, batch: Batch) -> None:
        """Assign each row to its nearest extra center and move centers to running means.

        Raises ValueError (scikit-learn's message) if the batch holds NaN or infinity: rows
        that seed the extra centers are checked as they arrive, the others through the squared
        norms the assignment computes anyway, so valid data costs no extra pass. The state is
        then unusable; estimators only commit a state whose stream completed."""
        if not self.initialized:
            assert_all_finite(batch.X, input_name="X")
            self._pending.append(batch)
            if sum(b.n_rows for b in self._pending) < self.n_extra:
                return
            batch = _concatenate(self._pending)
            self._pending = []
            self._initialize(batch)
        self._absorb(batch)

    def _absorb(self, batch: Batch) -> None:
        X = batch.X
        weight = _weights_of(batch, self.dtype)
        groups, sq_distances, clusters, x_sq = self._assign(X, weight)
        if not np.isfinite(x_sq).all():  # NaN or infinity somewhere (or a norm overflowed)
            assert_all_finite(X, input_name="X")
        if self.half_life > 0:
            # Every row already absorbed loses weight as b more rows arrive: 0.5 ** (b / h).
            decay = 0.5 ** (batch.n_rows / self.half_life)
            self.weights *= decay
            self._cells.scale(decay)
        # For progress lines: the batch's mean squared distance to the extra centers.
        self.progress_metric = ("batch msd", float(
            np.dot(weight.astype(np.float64), sq_distances) / max(float(weight.sum()), 1e-300)))
        n_sub = self.k * (self.k + 1)

        # The batch's (extra center, tentative sub-cell) cells. Local keys are sorted by extra
        # center, so each center's cells are consecutive.
        local_keys, cell_of_row, rows_by_cell = _cells_of_rows(
            groups.astype(np.int64) * n_sub + clusters)
        n_cells = local_keys.size
        weight64 = weight.astype(np.float64)
        cell_weights = np.bincount(cell_of_row, weights=weight64, minlength=n_cells)
        cell_sq = np.bincount(cell_of_row, weights=weight64 * x_sq, minlength=n_cells)
        cell_center = local_keys // n_sub
        starts = np.flatnonzero(np.r_[True, cell_center[1:] != cell_center[:-1]])
        hit = cell_center[starts]
        cell_bounds = np.r_[starts, n_cells]

        # c <- (1 - p) c + p * mean_batch with p = n_new / (n_old + n_new), written as the
        # weighted mean (n_old * c + sum_batch) / (n_old + n_new), for the extra centers and
        # for the coreset cells alike.
        old_weight = self.weights[hit]
        total = old_weight + np.add.reduceat(cell_weights, starts)
        cells = self._cells
        slots = cells.slots_for(self._group_ids[cell_center] * n_sub + local_keys % n_sub)
        cell_old = cells.weights[slots]
        cell_total = cell_old + cell_weights
        if sp.issparse(X):
            cell_sums = accumulate_weighted_sums(X, weight, cell_of_row.astype(np.int32),
                                                 n_cells)[0]
            merge_into_means(self.centers, hit, old_weight, cell_sums, total,
                             bounds=cell_bounds)
            merge_into_means(cells.means, slots, cell_old, cell_sums, cell_total)
        else:
            absorb_into_means(X, weight, cell_of_row, slots, cell_old, cell_total, cells.means,
                              hit, cell_bounds, old_weight, total, self.centers,
                              rows_by_cell=rows_by_cell)
        self.weights[hit] = total
        cells.record(slots, cell_total, cell_sq)
        self.n_seen += batch.n_rows
        self._reseed_starved(X, weight, sq_distances)
        self._refresh_tentative()

    def bound_for(self, n_centers: int) -> LowRankBound | None:
        """The low-rank bound, if assigning to ``n_centers`` centers should use it (else
        None): the state has one (``BOUNDED_MIN_CENTERS``) and there are enough centers
        (``BOUNDED_MIN_SHARED``)."""
        return self._bound if n_centers >= BOUNDED_MIN_SHARED else None

    def _assign(self, X, weight):
        """Place each row of a batch: its nearest extra center (int32) and the squared distance
        to it, its tentative sub-cell (``_sub_cells``), and its squared norm.

        Dense rows are scored against the extra and the tentative centers in one pass when
        plain GEMMs serve both; with a bound (at least ``BOUNDED_MIN_CENTERS`` extra centers)
        the batch's low-rank coordinates are computed once and shared by both searches. The
        first batch has no tentative centers yet: they are made here, from its rows summarised
        by extra center, between the two searches."""
        sparse = sp.issparse(X)
        if not sparse and self._bound is None and self.tentative is not None and self.k > 1:
            groups, sq_distances, nearest, runner_up, d1, d2, x_sq = nearest_and_two_nearest(
                X, self.centers, self.tentative)
            return groups, sq_distances, self._sub_cells(nearest, runner_up, d1, d2), x_sq
        bounded = NearestCenter(X, self._bound) if self._bound is not None and not sparse \
            else None
        if self._kept_rows is not None:
            self._kept_rows.add(X.shape[0], bounded)
        groups, sq_distances = bounded(self.centers) if bounded is not None \
            else nearest_centers(X, self.centers)
        if self.tentative is None:
            self.tentative = self._first_tentative_centers(X, weight, groups)
        if self.tentative is None or self.k == 1:
            clusters = np.zeros(X.shape[0], dtype=np.int64)
        elif bounded is not None and self.bound_for(self.k) is not None:
            top_two, indices = bounded.nearest(self.tentative, 2)
            clusters = self._sub_cells(*indices.T, *top_two.T)
        else:
            clusters = self._sub_cells(*two_nearest_centers(X, self.tentative))
        return groups, sq_distances, clusters, row_sq_norms(X)

    def keep_row_coordinates(self, max_bytes: int = KEPT_COORDINATES_MAX_BYTES) -> None:
        """From the next batch on, keep the low-rank coordinates the assignment computes for
        each row (up to ``max_bytes``), so that ``label_kept_rows`` can label the same rows
        without projecting them again."""
        self._kept_rows = _KeptCoordinates(max_bytes)

    def label_kept_rows(self, X, centers) -> tuple[np.ndarray, np.ndarray]:
        """Nearest of ``centers`` for each row of X and the squared distance to it.

        X must be the rows streamed since ``keep_row_coordinates``, in order. Their kept
        coordinates serve the exact bounded search when it pays (``bound_for``); otherwise,
        or if X is not those rows, this is the GEMM assignment. The kept coordinates are
        released either way.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        sq_distances : ndarray of shape (n_samples,), X's dtype
        """
        kept, self._kept_rows = self._kept_rows, None
        bound = self.bound_for(centers.shape[0])
        if bound is None or kept is None or sp.issparse(X) or kept.n_rows != X.shape[0]:
            return nearest_centers(X, centers)
        labels = np.empty(X.shape[0], dtype=np.int32)
        sq_distances = np.empty(X.shape[0], dtype=X.dtype)
        start = 0
        for n_rows, coordinates in kept.pieces:
            rows = slice(start, start + n_rows)
            labels[rows], sq_distances[rows] = NearestCenter(X[rows], bound, coordinates)(
                centers)
            start += n_rows
        return labels, sq_distances

    def _sub_cells(self, nearest, runner_up, d1, d2) -> np.ndarray:
        """Sub-cell of each row: its nearest tentative center, plus the runner-up for rows near
        the boundary between the two (squared distances within ``BOUNDARY_MARGIN``), so that
        rows on either side of a boundary that may still move are kept apart."""
        near = (d2 - d1) < BOUNDARY_MARGIN * np.maximum(d1, 1e-12)
        return nearest.astype(np.int64) * (self.k + 1) + np.where(near, runner_up + 1, 0)

    def _first_tentative_centers(self, X, weight, groups) -> np.ndarray | None:
        """Tentative centers from the first batch's rows summarised by extra center."""
        sums, group_weight = accumulate_weighted_sums(X, weight, groups, self.n_extra)
        filled = group_weight > 0
        if filled.sum() < self.k:
            return None
        points = (sums[filled] / group_weight[filled, None]).astype(self.dtype)
        return weighted_lloyd(points, group_weight[filled], self.k, init_method="kmeans++",
                              max_iter=50, tol=1e-4, n_trials=FIRST_TENTATIVE_TRIALS,
                              random_state=self.random_state,
                              bound=self.bound_for(self.k)).centers

    def _refresh_tentative(self) -> None:
        """A few warm Lloyd iterations on the coreset, after each of the first
        ``TENTATIVE_EVERY_BATCH`` batches, then after every ``max(b // 8, 3)``-th batch b (every
        third, later about eight times per doubling of the batches seen): after the first
        batches the tentative centers hardly move, and refreshing after every batch would cost
        more than the assignment itself."""
        self._n_batches += 1
        b = self._n_batches
        if b > TENTATIVE_EVERY_BATCH and b % max(b // 8, 3):
            return
        points, weights = self._cells.points()
        if self.tentative is None or points.shape[0] < self.k:
            return
        bound = self.bound_for(self.k)
        self.tentative = lloyd_trial(points, weights.astype(self.dtype), self.tentative,
                                     TENTATIVE_REFRESH_ITER, 1e-4,
                                     assigner(points, bound, self._cells.coordinates(bound)),
                                     final_loss=False)[0]

    def _reseed_starved(self, X, weight, sq_distances) -> None:
        """Move extra centers that stopped receiving points to poorly covered rows.

        The rule: after a batch, an extra center whose weight is below
        ``STARVED_WEIGHT_FRACTION`` of the mean center weight (it never won a row, or decay has
        erased what it had) is moved to a row of the batch drawn with probability proportional
        to ``w * D^2`` — the k-means++ rule, which favours rows far from every center — and
        restarts with weight 0 as a new group. The rows it absorbed before stay in the coreset.
        """
        mean_weight = self.weights.sum() / self.n_extra
        starved = np.flatnonzero(self.weights < STARVED_WEIGHT_FRACTION * mean_weight)
        if starved.size == 0:
            return
        score = weight.astype(np.float64) * sq_distances
        candidates = np.flatnonzero(score > 0)
        if candidates.size == 0:
            return
        n_moves = min(starved.size, candidates.size)
        probabilities = score[candidates] / score[candidates].sum()
        rows = self.random_state.choice(candidates, n_moves, replace=False, p=probabilities)
        moved = starved[:n_moves]
        self.centers[moved] = _dense(X[rows])
        self.weights[moved] = 0.0
        self._group_ids[moved] = self._next_group_id + np.arange(n_moves)
        self._next_group_id += n_moves
        self.n_reseeded += n_moves

    # -- merge -----------------------------------------------------------------------------------

    def merge(self, other: KMeansState) -> KMeansState:
        """The union of two states built on different parts of one stream.

        Extra centers and coreset cells of both are kept side by side (group ids of ``other``
        are shifted so cells never collide); the tentative centers are recomputed from the
        merged coreset. Rows still pending initialization are carried over.
        """
        if other.n_features != self.n_features or other.k != self.k:
            raise ValueError(
                f"cannot merge k-means states of shape (k={self.k}, {self.n_features} features) "
                f"and (k={other.k}, {other.n_features} features)"
            )
        merged = KMeansState(self.k, 0, self.n_features, self.dtype, self.init_method,
                             self.half_life, self.random_state)
        shift = self._next_group_id
        parts = [(s, offset) for s, offset in ((self, 0), (other, shift)) if s.initialized]
        if parts:
            merged.centers = np.concatenate([s.centers for s, _ in parts]).astype(self.dtype)
            merged.weights = np.concatenate([s.weights for s, _ in parts])
            merged._group_ids = np.concatenate([s._group_ids + off for s, off in parts])
            merged.n_extra = merged.centers.shape[0]
        merged._next_group_id = shift + other._next_group_id
        merged._cells = self._cells.union(other._cells, key_shift=shift * self.k * (self.k + 1))
        merged._pending = self._pending + other._pending
        merged._bound = self._bound if self._bound is not None else other._bound
        merged.n_seen = self.n_seen + other.n_seen
        merged.n_reseeded = self.n_reseeded + other.n_reseeded
        merged._n_batches = self._n_batches + other._n_batches
        merged.tentative = None
        points, weights = merged._cells.points()
        if points.shape[0] >= self.k:
            merged.tentative = weighted_lloyd(points, weights, self.k, init_method="kmeans++",
                                              max_iter=50, tol=1e-4, n_trials=1,
                                              random_state=self.random_state,
                                              bound=merged.bound_for(self.k)).centers
        return merged

    # -- finalize support ------------------------------------------------------------------------

    def coreset(self) -> tuple[np.ndarray, np.ndarray]:
        """The weighted points the finalize clusters: the means of the non-empty cells.

        Rows still pending (fewer rows were seen than extra centers) are their own points.

        Returns
        -------
        points : ndarray of shape (n_points, n_features), the state's dtype
        weights : ndarray of shape (n_points,), float64
        """
        points, weights = self._cells.points()
        if self._pending:
            rows, row_weights = _distinct_rows(_concatenate(self._pending), self.dtype)
            points = np.concatenate([points, rows])
            weights = np.concatenate([weights, row_weights])
        return np.ascontiguousarray(points), weights

    def coreset_coordinates(self, bound: LowRankBound | None) -> tuple | None:
        """The low-rank coordinates of ``coreset()``'s points under ``bound`` (the state's), or
        None without a bound or while rows are pending (see ``_Cells.coordinates``)."""
        return None if self._pending else self._cells.coordinates(bound)

    def within_scatter(self) -> float:
        """Weighted SSD of the absorbed rows to the means of their cells."""
        return self._cells.scatter()


class _KeptCoordinates:
    """Low-rank coordinates of streamed rows, batch by batch, within a byte budget.

    ``pieces`` holds ``(n_rows, (low, centered_sq_norms))`` per batch, in order; a batch that
    was not bounded, or did not fit the budget, has None instead of coordinates.
    """

    def __init__(self, max_bytes: int):
        self.free_bytes = max_bytes
        self.n_rows = 0
        self.pieces: list[tuple[int, tuple | None]] = []

    def add(self, n_rows: int, search: NearestCenter | None) -> None:
        coordinates = None
        if search is not None:
            size = search.rows_low.nbytes + search.rows_sq.nbytes
            if size <= self.free_bytes:
                coordinates = (search.rows_low, search.rows_sq)
                self.free_bytes -= size
        self.pieces.append((n_rows, coordinates))
        self.n_rows += n_rows


class _Cells:
    """Sufficient statistics of coreset cells, keyed by (group id, tentative sub-cell).

    Per cell: the weighted mean of its rows (in the data's dtype), their total weight and
    their weighted sum of squared norms — enough for the cell's scatter
    ``sum w |x|^2 - W |mean|^2``. Storage grows geometrically, so adding a batch's cells is
    amortized O(cells in the batch).

    With a low-rank bound, the cells' coordinates under it are kept too, for the Lloyd's
    iterations that cluster the cells (``coordinates``).
    """

    # Class-level defaults, so that cells pickled before the coordinates existed still load.
    _coordinates_bound = None
    _low = _centered_sq = _stale = None

    def __init__(self, n_features: int, dtype=np.float64, capacity: int = 1024):
        self.keys = np.empty(0, dtype=np.int64)  # sorted
        self._slot_of_key = np.empty(0, dtype=np.int64)
        self.n = 0
        self.means = np.zeros((capacity, n_features), dtype=dtype)
        self.weights = np.zeros(capacity)
        self.sq_norms = np.zeros(capacity)
        self._drop_coordinates()

    def _drop_coordinates(self) -> None:
        self._coordinates_bound = None
        self._low = self._centered_sq = self._stale = None

    def __getstate__(self):
        # Pickle the used cells only, not the spare capacity nor the coordinates (recomputed
        # on demand: a copy's bound is another object).
        state = dict(self.__dict__)
        for name in ("means", "weights", "sq_norms"):
            state[name] = state[name][: self.n].copy()
        state.update(_coordinates_bound=None, _low=None, _centered_sq=None, _stale=None)
        return state

    def coordinates(self, bound: LowRankBound | None) -> tuple | None:
        """``bound.coordinates`` of ``points()``, or None without a bound.

        Only cells whose means changed since they were last projected are projected again:
        between two refreshes of the tentative centers about half of the cells take rows (on
        Fashion-MNIST at k=100), and the finalize right after a refresh projects none.
        """
        if bound is None:
            return None
        if self._coordinates_bound is not bound:
            self._coordinates_bound = bound
            width = bound.components.shape[0] + 1
            self._low = np.empty((self.weights.size, width), dtype=self.means.dtype)
            self._centered_sq = np.empty(self.weights.size, dtype=self.means.dtype)
            self._stale = np.ones(self.weights.size, dtype=bool)
        stale = np.flatnonzero(self._stale[: self.n])
        if stale.size:
            self._low[stale], self._centered_sq[stale] = bound.coordinates(self.means[stale])
            self._stale[stale] = False
        filled = self._filled()
        return self._low[filled], self._centered_sq[filled]

    def add(self, keys, sums, weights, sq_norms) -> None:
        """Add rows summarised per cell: float64 ``sums`` of ``w x``, ``weights``, ``sq_norms``.
        Keys must be distinct."""
        slots = self.slots_for(keys)
        old_weight = self.weights[slots]
        total = old_weight + weights
        merge_into_means(self.means, slots, old_weight, sums, total)
        self.record(slots, total, sq_norms)

    def slots_for(self, keys) -> np.ndarray:
        """Storage rows of the cells with these (distinct) keys; unknown keys get new, empty
        cells."""
        position = np.searchsorted(self.keys, keys)
        known = position < self.keys.size
        known[known] = self.keys[position[known]] == keys[known]
        slots = np.empty(keys.size, dtype=np.int64)
        slots[known] = self._slot_of_key[position[known]]
        new = np.flatnonzero(~known)
        if new.size:
            slots[new] = self.n + np.arange(new.size)
            self._grow(self.n + new.size)
            self.n += new.size
            order = np.argsort(np.concatenate([self.keys, keys[new]]), kind="stable")
            self.keys = np.concatenate([self.keys, keys[new]])[order]
            self._slot_of_key = np.concatenate([self._slot_of_key, slots[new]])[order]
        return slots

    def record(self, slots, totals, sq_norms) -> None:
        """Book the new weights and squared norms of cells whose means were just updated."""
        self.weights[slots] = totals
        self.sq_norms[slots] += sq_norms
        if self._stale is not None:
            self._stale[slots] = True

    def _grow(self, size: int) -> None:
        capacity = self.weights.size
        if size <= capacity:
            return
        extra = max(size, capacity * 3 // 2) - capacity
        self.means = np.concatenate([self.means, np.zeros((extra, self.means.shape[1]),
                                                          dtype=self.means.dtype)])
        self.weights = np.concatenate([self.weights, np.zeros(extra)])
        self.sq_norms = np.concatenate([self.sq_norms, np.zeros(extra)])
        self._drop_coordinates()  # rare (capacity is generous): all are projected again

    def scale(self, factor: float) -> None:
        """Decay: every cell's weight shrinks by ``factor`` (means do not move)."""
        self.weights[: self.n] *= factor
        self.sq_norms[: self.n] *= factor

    def _filled(self) -> slice | np.ndarray:
        """The non-empty cells: a slice when every cell has weight (indexing gives views),
        else their indices."""
        weights = self.weights[: self.n]
        if weights.size and weights.min() > 0:
            return slice(0, self.n)
        return np.flatnonzero(weights > 0)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Means and weights of the non-empty cells (views when every cell has weight)."""
        filled = self._filled()
        return np.ascontiguousarray(self.means[filled]), self.weights[filled]

    def scatter(self) -> float:
        means, weights = self.points()
        sq_norms = self.sq_norms[self._filled()]
        mean_sq = np.einsum("ij,ij->i", means, means, dtype=np.float64)
        return float(np.maximum(sq_norms - weights * mean_sq, 0.0).sum())

    def union(self, other: _Cells, *, key_shift: int) -> _Cells:
        merged = _Cells(self.means.shape[1], self.means.dtype,
                        capacity=max(self.n + other.n, 1))
        for cells, shift in ((self, 0), (other, key_shift)):
            if cells.n:
                slots = cells._slot_of_key
                weights = cells.weights[slots]
                merged.add(cells.keys + shift, cells.means[slots] * weights[:, None], weights,
                           cells.sq_norms[slots])
        return merged


def _cells_of_rows(keys: np.ndarray):
    """The distinct keys of a batch's rows and how the rows fall into them, from one sort.

    Returns
    -------
    local_keys : ndarray of shape (n_cells,), sorted
    cell_of_row : ndarray of shape (n_rows,), each row's index into ``local_keys``
    rows_by_cell : tuple of ndarray
        ``(order, row_bounds)``: cell c's rows are ``order[row_bounds[c]:row_bounds[c + 1]]``,
        in row order (the sort is stable) — what ``absorb_into_means`` walks.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.empty(keys.size, dtype=bool)
    first[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    cell_of_row = np.empty(keys.size, dtype=np.intp)
    cell_of_row[order] = np.cumsum(first) - 1
    return sorted_keys[starts], cell_of_row, (order, np.append(starts, keys.size))


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _distinct_rows(batch: Batch, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Rows with positive weight, exact duplicates merged (weights added), in sorted order.

    Merging makes a weight of 3 and three copies of a row the same coreset, which is what
    ``sample_weight`` promises (scikit-learn checks it).
    """
    X = _dense(batch.X).astype(dtype, copy=False)
    weight = _weights_of(batch, np.float64)
    X, weight = X[weight > 0], weight[weight > 0]
    rows, inverse = np.unique(X, axis=0, return_inverse=True)
    return rows, np.bincount(inverse.ravel(), weights=weight, minlength=rows.shape[0])


def _weights_of(batch: Batch, dtype) -> np.ndarray:
    if batch.sample_weight is None:
        return np.ones(batch.n_rows, dtype=dtype)
    return np.asarray(batch.sample_weight, dtype=dtype)


def _concatenate(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    if any(sp.issparse(b.X) for b in batches):
        X = sp.vstack([sp.csr_matrix(b.X) for b in batches], format="csr")
    else:
        X = np.concatenate([b.X for b in batches])
    weights = None
    if any(b.sample_weight is not None for b in batches):
        weights = np.concatenate([_weights_of(b, np.float64) for b in batches])
    return Batch(X, None, weights)
