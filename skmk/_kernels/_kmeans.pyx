"""k-means kernels: sparse assignment, weighted center sums, weighted k-means++.

Dense assignment lives in ``_assign.pyx``; these are the other hot loops of streaming k-means:

* ``assign_csr``: nearest center of each CSR row. Each nonzero (column c, value v) adds
  ``v * centers_t[c, :]`` to a row's dot products, a contiguous axpy over the centers, so the
  transposed centers are read in cache-friendly order.
* ``accumulate_dense`` / ``accumulate_csr``: per-center sums of ``w_i * x_i`` and of ``w_i`` for
  given labels; each thread owns a range of centers (no atomics, no private copies, the same
  result for any thread count).
* ``merge_into_means``: fold per-cell sums into running weighted means in place (the coreset
  cells' update after each mini-batch), without the gather/compute/scatter temporaries numpy
  would need.
* ``absorb_dense``: a mini-batch's rows straight into the means of their coreset cells and of
  their extra centers, with no per-cell sums in memory.
* ``kmeans_plusplus``: weighted greedy k-means++ seeding (D² sampling where each point counts
  with its weight; several candidates per round, keep the one that lowers the potential most).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_MAX
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._blas cimport dot, gemm_abt


def assign_csr(
    const floating[::1] data,               # IN  CSR values
    const int[::1] indices,                 # IN  CSR column indices
    const int[::1] indptr,                  # IN  CSR row pointers (n_samples + 1,)
    const floating[:, ::1] centers_t,       # IN  (n_features, n_centers), centers transposed
    const floating[::1] centers_sq_norms,   # IN  (n_centers,)
    int[::1] labels,                        # OUT (n_samples,)
    floating[::1] sq_distances,             # OUT (n_samples,)
    int n_threads,
):
    """Nearest center and squared distance of each CSR row (ties to the lowest index)."""
    cdef:
        int n_samples = indptr.shape[0] - 1
        int n_centers = centers_t.shape[1]
        int i, j, k, col, best_j
        floating value, best, x_sq, candidate
        floating *dots

    if n_samples == 0:
        return
    dots = NULL
    with nogil, parallel(num_threads=n_threads):
        dots = <floating *> malloc(sizeof(floating) * n_centers)
        for i in prange(n_samples, schedule="static"):
            memset(dots, 0, sizeof(floating) * n_centers)
            x_sq = 0
            for k in range(indptr[i], indptr[i + 1]):
                col = indices[k]
                value = data[k]
                x_sq = x_sq + value * value
                for j in range(n_centers):
                    dots[j] += value * centers_t[col, j]
            best = DBL_MAX
            best_j = 0
            for j in range(n_centers):
                candidate = centers_sq_norms[j] - 2 * dots[j]
                if candidate < best:
                    best = candidate
                    best_j = j
            labels[i] = best_j
            sq_distances[i] = max(x_sq + best, <floating> 0.0)
        free(dots)


def accumulate_dense(
    const floating[:, ::1] X,               # IN  (n_samples, n_features)
    const floating[::1] sample_weight,      # IN  (n_samples,)
    const int[::1] labels,                  # IN  (n_samples,)
    double[:, ::1] sums,                    # OUT (n_centers, n_features), added to
    double[::1] weights,                    # OUT (n_centers,), added to
    int n_threads,
):
    """sums[labels[i]] += w_i * X[i] and weights[labels[i]] += w_i, accumulated in float64.

    Sums are kept in float64 whatever X's dtype so that long streams of float32 data do not lose
    the small contributions of late batches. Each thread owns a contiguous range of centers and
    adds only the rows labelled with one of them: no private copies of ``sums`` to clear and
    reduce (they would cost more than the sums when there are thousands of centers), and every
    center's rows are added in row order, so results do not depend on the thread count.
    """
    cdef:
        int n_samples = X.shape[0]
        int n_features = X.shape[1]
        int n_centers = sums.shape[0]
        int i, f, t, label, low, high
        double w

    n_threads = max(min(n_threads, n_centers), 1)
    with nogil:
        for t in prange(n_threads, schedule="static", chunksize=1, num_threads=n_threads):
            low = _range_start(t, n_centers, n_threads)
            high = _range_start(t + 1, n_centers, n_threads)
            for i in range(n_samples):
                label = labels[i]
                if label < low or label >= high:
                    continue
                w = sample_weight[i]
                weights[label] += w
                for f in range(n_features):
                    sums[label, f] += w * X[i, f]


def accumulate_csr(
    const floating[::1] data,
    const int[::1] indices,
    const int[::1] indptr,
    const floating[::1] sample_weight,      # IN  (n_samples,)
    const int[::1] labels,                  # IN  (n_samples,)
    double[:, ::1] sums,                    # OUT (n_centers, n_features), added to
    double[::1] weights,                    # OUT (n_centers,), added to
    int n_threads,
):
    """The CSR twin of ``accumulate_dense`` (same ownership of center ranges by threads)."""
    cdef:
        int n_samples = indptr.shape[0] - 1
        int n_centers = sums.shape[0]
        int i, k, t, label, low, high
        double w

    n_threads = max(min(n_threads, n_centers), 1)
    with nogil:
        for t in prange(n_threads, schedule="static", chunksize=1, num_threads=n_threads):
            low = _range_start(t, n_centers, n_threads)
            high = _range_start(t + 1, n_centers, n_threads)
            for i in range(n_samples):
                label = labels[i]
                if label < low or label >= high:
                    continue
                w = sample_weight[i]
                weights[label] += w
                for k in range(indptr[i], indptr[i + 1]):
                    sums[label, indices[k]] += w * data[k]


cdef inline int _range_start(int t, int n, int n_parts) noexcept nogil:
    """Start of part t when [0, n) is cut into n_parts contiguous, near-equal parts."""
    return <int> ((<long> t * n) // n_parts)


def kmeans_plusplus(
    const floating[:, ::1] X,               # IN  (n_samples, n_features)
    const floating[::1] sample_weight,      # IN  (n_samples,), > 0
    int n_clusters,
    int n_local_trials,
    const double[::1] uniforms,             # IN  (1 + (n_clusters - 1) * n_local_trials,) in [0, 1)
    floating[:, ::1] centers,               # OUT (n_clusters, n_features)
    int[::1] chosen,                        # OUT (n_clusters,) row index of each center
    const floating[:, ::1] gram,            # IN  (n_samples, n_samples) X Xᵀ, or empty
):
    """Weighted greedy k-means++ seeding.

    The first center is drawn with probability proportional to weight; each later round draws
    ``n_local_trials`` candidates with probability proportional to ``w_i * D(x_i)^2`` and keeps
    the one that minimises the new potential ``sum_i w_i * min(D(x_i)^2, ||x_i - c||^2)``.
    Randomness comes in as pre-drawn uniforms so that numpy's seeded generator decides the
    result. Runs single-threaded: the coresets it seeds hold at most a few thousand points.

    Each round needs the dot products of every point with its few candidates. Given the Gram
    matrix ``gram`` they are rows of it; otherwise one small GEMM per round computes them (and
    BLAS packs all of X for it each time, which dominates when there are many rounds).
    """
    cdef:
        int n_samples = X.shape[0]
        int n_features = X.shape[1]
        int c, trial, i, f, best_trial, pick, next_uniform = 0
        bint use_gram = gram.shape[0] == n_samples and n_samples > 0
        double potential, best_potential, target, running, d
        floating *candidate_dots
        floating *candidate_rows
        double *closest_sq
        double *x_sq
        double *cumulative
        double *trial_potential
        int *candidates

    closest_sq = <double *> malloc(sizeof(double) * n_samples)
    x_sq = <double *> malloc(sizeof(double) * n_samples)
    cumulative = <double *> malloc(sizeof(double) * n_samples)
    candidate_dots = <floating *> malloc(sizeof(floating) * n_samples * n_local_trials)
    candidate_rows = <floating *> malloc(sizeof(floating) * n_features * n_local_trials)
    trial_potential = <double *> malloc(sizeof(double) * n_local_trials)
    candidates = <int *> malloc(sizeof(int) * n_local_trials)
    try:
        with nogil:
            for i in range(n_samples):
                x_sq[i] = gram[i, i] if use_gram else dot(n_features, &X[i, 0], &X[i, 0])
                cumulative[i] = sample_weight[i] + (cumulative[i - 1] if i else 0.0)
            pick = _search(cumulative, n_samples, uniforms[next_uniform] * cumulative[n_samples - 1])
            next_uniform += 1
            _set_center(X, centers, chosen, 0, pick)
            potential = 0.0
            for i in range(n_samples):
                if use_gram:
                    d = x_sq[i] + x_sq[pick] - 2 * gram[pick, i]
                else:
                    d = x_sq[i] + x_sq[pick] - 2 * dot(n_features, &X[i, 0], &X[pick, 0])
                closest_sq[i] = max(d, 0.0)
                potential += sample_weight[i] * closest_sq[i]

            for c in range(1, n_clusters):
                running = 0.0
                for i in range(n_samples):
                    running += sample_weight[i] * closest_sq[i]
                    cumulative[i] = running
                for trial in range(n_local_trials):
                    target = uniforms[next_uniform] * running
                    next_uniform += 1
                    candidates[trial] = _search(cumulative, n_samples, target)
                # dots between every point and every candidate: rows of the Gram matrix, or
                # one GEMM
                if use_gram:
                    for trial in range(n_local_trials):
                        memcpy(&candidate_dots[trial * n_samples], &gram[candidates[trial], 0],
                               sizeof(floating) * n_samples)
                else:
                    for trial in range(n_local_trials):
                        for f in range(n_features):
                            candidate_rows[trial * n_features + f] = X[candidates[trial], f]
                    gemm_abt(n_local_trials, n_samples, n_features, <floating> 1.0,
                             candidate_rows, &X[0, 0], <floating> 0.0, candidate_dots)
                best_trial = 0
                best_potential = DBL_MAX
                for trial in range(n_local_trials):
                    pick = candidates[trial]
                    trial_potential[trial] = 0.0
                    for i in range(n_samples):
                        d = x_sq[i] + x_sq[pick] - 2 * candidate_dots[trial * n_samples + i]
                        trial_potential[trial] += sample_weight[i] * min(closest_sq[i], max(d, 0.0))
                    if trial_potential[trial] < best_potential:
                        best_potential = trial_potential[trial]
                        best_trial = trial
                pick = candidates[best_trial]
                _set_center(X, centers, chosen, c, pick)
                for i in range(n_samples):
                    d = x_sq[i] + x_sq[pick] - 2 * candidate_dots[best_trial * n_samples + i]
                    closest_sq[i] = min(closest_sq[i], max(d, 0.0))
    finally:
        free(closest_sq)
        free(x_sq)
        free(cumulative)
        free(candidate_dots)
        free(candidate_rows)
        free(trial_potential)
        free(candidates)


cdef inline int _search(const double *cumulative, int n, double target) noexcept nogil:
    """First index whose cumulative value exceeds target (binary search); n - 1 at the end."""
    cdef int low = 0, high = n - 1, middle
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] > target:
            high = middle
        else:
            low = middle + 1
    return low


cdef inline void _set_center(
    const floating[:, ::1] X, floating[:, ::1] centers, int[::1] chosen, int c, int row,
) noexcept nogil:
    cdef int f
    for f in range(X.shape[1]):
        centers[c, f] = X[row, f]
    chosen[c] = row



cdef inline void _fold_into_mean(floating *mean, const double *sums, double old_weight,
                                 double total, Py_ssize_t n_features) noexcept nogil:
    """mean <- (old_weight * mean + sums) / total in double precision; left as is when total
    is 0 (only rows of weight 0 reached it). The division is by two factors taken once,
    (old_weight / total) and (1 / total): a division per element held the update to the
    divider's throughput."""
    cdef Py_ssize_t f
    cdef double keep, scale
    if not total > 0:
        return
    keep = old_weight / total
    scale = 1.0 / total
    for f in range(n_features):
        mean[f] = <floating> (keep * mean[f] + scale * sums[f])


def absorb_dense(
    const floating[:, ::1] X,               # IN  (n_samples, n_features)
    const floating[::1] sample_weight,      # IN  (n_samples,)
    const long[::1] order,                  # IN  (n_samples,) rows grouped by cell
    const long[::1] row_bounds,             # IN  (n_cells + 1,) cell c: order[row_bounds[c]:row_bounds[c+1]]
    const long[::1] cell_slots,             # IN  (n_cells,) row of ``cell_means`` of each cell
    const double[::1] cell_old_weights,     # IN  (n_cells,)
    const double[::1] cell_totals,          # IN  (n_cells,)
    floating[:, ::1] cell_means,            # IN/OUT (n_slots, n_features)
    const long[::1] center_slots,           # IN  (n_hit,) distinct rows of ``centers``
    const long[::1] cell_bounds,            # IN  (n_hit + 1,) center h owns cells cell_bounds[h]:[h+1]
    const double[::1] center_old_weights,   # IN  (n_hit,)
    const double[::1] center_totals,        # IN  (n_hit,)
    floating[:, ::1] centers,               # IN/OUT (n_centers, n_features)
    int n_threads,
):
    """Fold a batch's rows into running weighted means: each coreset cell's and each extra
    center's, mean <- (old_weight * mean + sum of w_i x_i) / total, in double precision.

    A center's cells are contiguous, and a cell's rows are listed together in ``order``. Each
    thread takes whole centers: it sums a cell's rows into a private buffer, updates the cell's
    mean, adds the buffer to the center's, and updates the center's mean — the per-cell sums
    never exist as an array (they would be thousands of rows of float64 written and read twice
    per batch). Rows are added in the order given and cells in order, so the result does not
    depend on the thread count. A mean whose total is 0 (only rows of weight 0) is left as is.
    """
    cdef:
        Py_ssize_t n_hit = center_slots.shape[0]
        Py_ssize_t n_features = X.shape[1]
        Py_ssize_t h, c, r, i, f
        double w
        double *cell_sum
        double *center_sum

    if n_hit == 0:
        return
    cell_sum = NULL
    center_sum = NULL
    with nogil, parallel(num_threads=n_threads):
        cell_sum = <double *> malloc(sizeof(double) * n_features)
        center_sum = <double *> malloc(sizeof(double) * n_features)
        for h in prange(n_hit, schedule="dynamic", chunksize=4):
            memset(center_sum, 0, sizeof(double) * n_features)
            for c in range(cell_bounds[h], cell_bounds[h + 1]):
                memset(cell_sum, 0, sizeof(double) * n_features)
                for r in range(row_bounds[c], row_bounds[c + 1]):
                    i = order[r]
                    w = sample_weight[i]
                    for f in range(n_features):
                        cell_sum[f] += w * X[i, f]
                _fold_into_mean(&cell_means[cell_slots[c], 0], cell_sum, cell_old_weights[c],
                                cell_totals[c], n_features)
                for f in range(n_features):
                    center_sum[f] = center_sum[f] + cell_sum[f]
            _fold_into_mean(&centers[center_slots[h], 0], center_sum, center_old_weights[h],
                            center_totals[h], n_features)
        free(cell_sum)
        free(center_sum)


def merge_into_means(
    floating[:, ::1] means,                 # IN/OUT (n_slots, n_features) running means
    const long[::1] slots,                  # IN  (n,) distinct rows of ``means`` to update
    const double[::1] old_weights,          # IN  (n,) weight behind each mean so far
    const double[:, ::1] sums,              # IN  (n_parts, n_features) weighted sums of new rows
    const long[::1] bounds,                 # IN  (n + 1,) slot i's parts: sums[bounds[i]:bounds[i+1]]
    const double[::1] totals,               # IN  (n,) old weight + new weight
    int n_threads,
):
    """means[slots[i]] <- (old_weights[i] * means[slots[i]] + sum of slot i's parts) / totals[i],
    in double precision, stored in the means' dtype; a slot whose total is 0 (only rows of
    weight 0 reached it) keeps its mean. Slots must be distinct (each row written once). A
    slot's new rows may come as several partial sums (one per coreset cell of an extra center,
    say): adding them here spares a reduction into a temporary array."""
    cdef:
        Py_ssize_t n = slots.shape[0]
        Py_ssize_t n_features = means.shape[1]
        Py_ssize_t i, j, r, slot
        double keep, scale, total, added

    for i in prange(n, nogil=True, num_threads=n_threads, schedule="static"):
        slot = slots[i]
        total = totals[i]
        if total > 0:
            keep = old_weights[i] / total
            scale = 1.0 / total
            for j in range(n_features):
                added = 0.0
                for r in range(bounds[i], bounds[i + 1]):
                    added = added + sums[r, j]
                means[slot, j] = <floating> (keep * means[slot, j] + scale * added)
