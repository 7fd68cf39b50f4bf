"""Exact nearest neighbours with a low-rank lower bound: most candidates never get a distance.

With P an orthonormal basis of m directions, μ a center, x̃ = x - μ and r(x) = ||x̃ - PᵀPx̃||
the residual norm off the basis, Cauchy–Schwarz on the residual gives, for every q and x,

    q̃·x̃  =  Pq̃·Px̃ + (residual of q)·(residual of x)  ≤  Pq̃·Px̃ + r(q) r(x),

so with the augmented vectors low(x) = [Px̃, r(x)] (m + 1 numbers)

    ||q - x||²  ≥  ||q̃||² + ||x̃||² - 2 low(q)·low(x)  =:  lb(q, x).

When the basis holds most of the data's variance (a PCA basis), lb is tight, and one GEMM in
m + 1 dimensions bounds every pair. The search keeps, per query, a max-heap of the t best exact
squared distances found so far; a candidate is evaluated exactly only when its lower bound is
below the current t-th best, which is rarely (on Fashion-MNIST with m = 128, about 0.2 % of
60,000 rows per query). The result is the exact t nearest (ties to the lower index), not an
approximation.

Rounding can only loosen the bound, never break it: residual norms are inflated by a margin
larger than the worst rounding error of their computation (``project_low``), and the pruning test
keeps a relative slack (``search``'s caller passes it) for the GEMM and the exact distances.

Work is split into (row chunk × base tile) blocks: the tile of base vectors stays in cache while
a chunk of queries is bounded against it, and the bound buffer stays L2-sized.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, sqrt
from libc.stdlib cimport free, malloc

from ._blas cimport dot, gemm_abt


cdef extern from "_bounded.h":
    float skmk_sq_dist_float(const float *a, const float *b, int n) nogil
    double skmk_sq_dist_double(const double *a, const double *b, int n) nogil
    int skmk_next_below_float(const float *a, const float *b, int start, int n,
                              float threshold) nogil
    int skmk_next_below_double(const double *a, const double *b, int start, int n,
                               double threshold) nogil


cdef inline floating sq_dist(const floating *a, const floating *b, int n) noexcept nogil:
    if floating is float:
        return skmk_sq_dist_float(a, b, n)
    else:
        return skmk_sq_dist_double(a, b, n)


cdef inline int next_below(const floating *a, const floating *b, int start, int n,
                           floating threshold) noexcept nogil:
    """First j >= start with a[j] + b[j] < threshold, or n."""
    if floating is float:
        return skmk_next_below_float(a, b, start, n, threshold)
    else:
        return skmk_next_below_double(a, b, start, n, threshold)


def project_low(
    const floating[:, ::1] X,            # IN  (n_samples, n_features)
    const floating[:, ::1] components,   # IN  (m, n_features), orthonormal rows
    const floating[::1] mean,            # IN  (n_features,)
    double inflation,                    # IN  added to r² as a fraction of ||x̃||²
    floating[:, ::1] low,                # OUT (n_samples, m + 1): [P x̃, r̂]
    floating[::1] centered_sq_norms,     # OUT (n_samples,): ||x̃||²
    int n_threads,
    int chunk_size,
):
    """Augmented low-rank coordinates of each row, for the bound of ``search``.

    r̂ = sqrt(max(||x̃||² - ||Px̃||², 0) + inflation * ||x̃||²) is at least the true residual
    norm whenever ``inflation`` exceeds the relative rounding error of ``||x̃||² - ||Px̃||²``, so
    the bound built from it stays a lower bound.
    """
    cdef:
        int n_samples = X.shape[0]
        int n_features = X.shape[1]
        int m = components.shape[0]
        int n_chunks = (n_samples + chunk_size - 1) // chunk_size
        int chunk, start, n_rows, i, j, row
        floating *centered
        floating *projected
        floating norm_sq, projected_sq, residual_sq

    if n_samples == 0:
        return
    centered = projected = NULL
    if n_chunks < n_threads:
        n_threads = max(n_chunks, 1)
    with nogil, parallel(num_threads=n_threads):
        centered = <floating *> malloc(sizeof(floating) * chunk_size * n_features)
        projected = <floating *> malloc(sizeof(floating) * chunk_size * m)
        for chunk in prange(n_chunks, schedule="static"):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            # Centering first (rather than subtracting P μ afterwards) keeps the rounding error
            # relative to ||x̃||, not to ||x|| + ||μ||.
            for i in range(n_rows):
                for j in range(n_features):
                    centered[i * n_features + j] = X[start + i, j] - mean[j]
            gemm_abt(n_rows, m, n_features, <floating> 1.0, centered, &components[0, 0],
                     <floating> 0.0, projected)
            for i in range(n_rows):
                row = start + i
                norm_sq = dot(n_features, &centered[i * n_features], &centered[i * n_features])
                projected_sq = dot(m, &projected[i * m], &projected[i * m])
                for j in range(m):
                    low[row, j] = projected[i * m + j]
                residual_sq = max(norm_sq - projected_sq, <floating> 0.0)
                low[row, m] = sqrt(residual_sq + <floating> inflation * norm_sq)
                centered_sq_norms[row] = norm_sq
        free(centered)
        free(projected)


cdef inline bint worse(floating d_a, int i_a, floating d_b, int i_b) noexcept nogil:
    """(d_a, i_a) ranks after (d_b, i_b): farther, or as far with a higher index."""
    return d_a > d_b or (d_a == d_b and i_a > i_b)


cdef inline void replace_top(floating *heap_d, int *heap_i, int size, floating d,
                             int index) noexcept nogil:
    """Put (d, index) in place of the worst entry of a max-heap and restore the heap."""
    cdef int parent = 0, child
    while True:
        child = 2 * parent + 1
        if child >= size:
            break
        if child + 1 < size and worse(heap_d[child + 1], heap_i[child + 1],
                                      heap_d[child], heap_i[child]):
            child += 1
        if not worse(heap_d[child], heap_i[child], d, index):
            break
        heap_d[parent], heap_i[parent] = heap_d[child], heap_i[child]
        parent = child
    heap_d[parent], heap_i[parent] = d, index


cdef inline void sort_heap(floating *heap_d, int *heap_i, int size) noexcept nogil:
    """Turn a max-heap into ascending order in place (heapsort's second half)."""
    cdef int end
    cdef floating d
    cdef int index
    for end in range(size - 1, 0, -1):
        d, index = heap_d[end], heap_i[end]
        heap_d[end], heap_i[end] = heap_d[0], heap_i[0]
        replace_top(heap_d, heap_i, end, d, index)


def search(
    const floating[:, ::1] Q,            # IN  (n_queries, n_features)
    const floating[:, ::1] Q_low,        # IN  (n_queries, m + 1)   from project_low
    const floating[::1] Q_sq,            # IN  (n_queries,)         ||q̃||²
    const floating[:, ::1] B,            # IN  (n_base, n_features)
    const floating[:, ::1] B_low,        # IN  (n_base, m + 1)
    const floating[::1] B_sq,            # IN  (n_base,)            ||b̃||²
    int[:, ::1] indices,                 # OUT (n_queries, t)
    floating[:, ::1] sq_distances,       # OUT (n_queries, t)
    double slack,                        # IN  relative rounding allowance of the bound
    int n_threads,
    int chunk_size,
    int tile_size,
):
    """The t nearest base rows of each query (exact), ascending; returns how many exact
    distances were computed (the rest were pruned by the bound)."""
    cdef:
        int n_queries = Q.shape[0]
        int n_features = Q.shape[1]
        int n_base = B.shape[0]
        int width = Q_low.shape[1]
        int t = indices.shape[1]
        int n_chunks = (n_queries + chunk_size - 1) // chunk_size
        int n_tiles = (n_base + tile_size - 1) // tile_size
        int chunk, start, n_rows, tile, tile_start, n_tile, i, j, k, row
        long n_evaluated = 0
        floating keep = <floating> (1.0 - slack)
        floating offset, d, threshold
        floating *bounds
        floating *scaled_sq
        floating *pick_d
        int *pick_i
        floating *heap_d
        int *heap_i

    if n_queries == 0:
        return 0
    if n_chunks < n_threads:
        n_threads = max(n_chunks, 1)
    # The bound test is (1 - slack)(||q̃||² + ||b̃||²) - 2 low(q)·low(b) < t-th best: the base
    # half of the left side is the same for every query.
    scaled_sq = <floating *> malloc(sizeof(floating) * n_base)
    for j in range(n_base):
        scaled_sq[j] = keep * B_sq[j]
    bounds = pick_d = heap_d = NULL
    pick_i = heap_i = NULL

    with nogil, parallel(num_threads=n_threads):
        bounds = <floating *> malloc(sizeof(floating) * chunk_size * tile_size)
        pick_d = <floating *> malloc(sizeof(floating) * t)
        pick_i = <int *> malloc(sizeof(int) * t)
        for chunk in prange(n_chunks, schedule="dynamic"):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_queries - start)
            for i in range(n_rows):
                for k in range(t):
                    sq_distances[start + i, k] = INFINITY
                    indices[start + i, k] = -1
            for tile in range(n_tiles):
                tile_start = tile * tile_size
                n_tile = min(tile_size, n_base - tile_start)
                gemm_abt(n_rows, n_tile, width, <floating> -2.0, &Q_low[start, 0],
                         &B_low[tile_start, 0], <floating> 0.0, bounds)
                for i in range(n_rows):
                    row = start + i
                    heap_d = &sq_distances[row, 0]
                    heap_i = &indices[row, 0]
                    offset = keep * Q_sq[row]
                    if heap_d[0] == INFINITY:
                        # No t exact distances yet: evaluate the t smallest bounds of this tile
                        # first, so that the scan below starts with a tight threshold.
                        for k in range(t):
                            pick_d[k] = INFINITY
                            pick_i[k] = -1
                        j = next_below(&scaled_sq[tile_start], &bounds[i * n_tile], 0, n_tile,
                                       <floating> INFINITY)
                        while j < n_tile:
                            replace_top(pick_d, pick_i, t,
                                        scaled_sq[tile_start + j] + bounds[i * n_tile + j], j)
                            j = next_below(&scaled_sq[tile_start], &bounds[i * n_tile], j + 1,
                                           n_tile, pick_d[0])
                        for k in range(t):
                            j = pick_i[k]
                            if j < 0:
                                continue
                            d = sq_dist(&Q[row, 0], &B[tile_start + j, 0], n_features)
                            n_evaluated += 1
                            if worse(heap_d[0], heap_i[0], d, tile_start + j):
                                replace_top(heap_d, heap_i, t, d, tile_start + j)
                            bounds[i * n_tile + j] = INFINITY  # done: the scan skips it
                    threshold = heap_d[0] - offset
                    j = next_below(&scaled_sq[tile_start], &bounds[i * n_tile], 0, n_tile,
                                   threshold)
                    while j < n_tile:
                        d = sq_dist(&Q[row, 0], &B[tile_start + j, 0], n_features)
                        n_evaluated += 1
                        if worse(heap_d[0], heap_i[0], d, tile_start + j):
                            replace_top(heap_d, heap_i, t, d, tile_start + j)
                            threshold = heap_d[0] - offset
                        j = next_below(&scaled_sq[tile_start], &bounds[i * n_tile], j + 1,
                                       n_tile, threshold)
            for i in range(n_rows):
                sort_heap(&sq_distances[start + i, 0], &indices[start + i, 0], t)
        free(bounds)
        free(pick_d)
        free(pick_i)
    free(scaled_sq)
    return n_evaluated
