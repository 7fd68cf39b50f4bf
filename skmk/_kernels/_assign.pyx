"""Nearest-center assignment by chunked GEMM.

For every row x of X the kernel finds argmin_j ||x - c_j||^2 and that squared distance, using
||x - c||^2 = ||x||^2 + ||c||^2 - 2 x.c: the x.c terms for a chunk of rows come from one GEMM
into a small thread-local buffer, and the argmin is taken while the buffer is hot in cache. The
full (n_samples, n_centers) distance matrix never exists, so memory stays O(chunk * n_centers)
per thread whatever n_samples is.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc

from ._blas cimport dot, gemm_abt


cdef extern from "_omp_compat.h":
    int skmk_omp_max_threads() nogil
    int skmk_openmp_enabled() nogil

cdef extern from "_argmin.h":
    void skmk_select_rows_float(float *dots, int n_rows, int n_centers, const float *norms,
                                int n_nearest, int *labels, float *sq, int *top, float *top_sq,
                                int *second, float *second_sq) nogil
    void skmk_select_rows_double(double *dots, int n_rows, int n_centers, const double *norms,
                                 int n_nearest, int *labels, double *sq, int *top,
                                 double *top_sq, int *second, double *second_sq) nogil


cdef inline void select_rows(floating *dots, int n_rows, int n_centers, const floating *norms,
                             int n_nearest, int *labels, floating *sq, int *top,
                             floating *top_sq, int *second, floating *second_sq) noexcept nogil:
    """Per row of a chunk: the nearest of the first ``n_nearest`` centers (argmin of
    norms + dots, ties to the lowest index) and, when ``top`` is not NULL, the two nearest of
    the others (``_argmin.h``)."""
    if floating is float:
        skmk_select_rows_float(dots, n_rows, n_centers, norms, n_nearest, labels, sq, top,
                               top_sq, second, second_sq)
    else:
        skmk_select_rows_double(dots, n_rows, n_centers, norms, n_nearest, labels, sq, top,
                                top_sq, second, second_sq)


def omp_max_threads():
    """Threads an OpenMP region would use now (1 when the kernels were built without OpenMP)."""
    return skmk_omp_max_threads()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(skmk_openmp_enabled())


def assign_dense(
    const floating[:, ::1] X,               # IN  (n_samples, n_features)
    const floating[:, ::1] centers,         # IN  (n_centers, n_features)
    const floating[::1] centers_sq_norms,   # IN  (n_centers,)
    int n_nearest,                          # IN  centers[:n_nearest] get the plain argmin
    int[::1] labels,                        # OUT (n_samples,) or empty
    floating[::1] sq_distances,             # OUT (n_samples,) or empty
    int[::1] top_labels,                    # OUT (n_samples,) or empty
    floating[::1] top_sq_distances,         # OUT (n_samples,) or empty
    int[::1] second_labels,                 # OUT (n_samples,) or empty
    floating[::1] second_sq_distances,      # OUT (n_samples,) or empty
    floating[::1] rows_sq_norms,            # OUT (n_samples,) or empty
    int n_threads,
    int chunk_size,
    bint row_norms=True,
):
    """Assign each row of X to two blocks of centers with one GEMM per chunk of rows.

    ``centers[:n_nearest]`` is the first block: each row's nearest center in it and that squared
    Euclidean distance go to ``labels`` / ``sq_distances``. ``centers[n_nearest:]`` is the
    second: when ``top_labels`` has a slot per row and the block holds at least two centers,
    each row's nearest and runner-up in it (indices relative to the block) go to ``top_labels``
    / ``top_sq_distances`` and ``second_labels`` / ``second_sq_distances``. Streaming k-means
    needs both for every batch — the nearest extra center and the two nearest tentative centers
    — and one pass over the rows serves both.

    With ``row_norms`` false the ``||x||^2`` term is skipped (labels only: distances then hold
    ``||c||^2 - 2 x.c``), which saves a pass over each row. ``rows_sq_norms``, when it has a slot
    per row, receives ``||x||^2``. Ties go to the lowest center index. Distances are clipped at
    0 (the expanded form can go slightly negative by rounding when x sits on a center).
    """
    cdef:
        int n_samples = X.shape[0]
        int n_features = X.shape[1]
        int n_centers = centers.shape[0]
        int n_chunks = (n_samples + chunk_size - 1) // chunk_size
        bint want_nearest = n_nearest > 0 and labels.shape[0] == n_samples
        bint want_top_two = top_labels.shape[0] == n_samples and n_centers - n_nearest >= 2
        bint keep_norms = rows_sq_norms.shape[0] == n_samples
        int chunk, start, n_rows, i, row
        floating x_sq
        floating *dots

    if n_samples == 0:
        return
    dots = NULL  # set per thread below; initialised to keep the compiler's analysis quiet
    if n_chunks < n_threads:
        n_threads = max(n_chunks, 1)

    with nogil, parallel(num_threads=n_threads):
        # Thread-local buffer of -2 x.c for one chunk of rows.
        dots = <floating *> malloc(sizeof(floating) * chunk_size * n_centers)
        for chunk in prange(n_chunks, schedule="static"):
            start = chunk * chunk_size
            n_rows = min(chunk_size, n_samples - start)
            gemm_abt(n_rows, n_centers, n_features, <floating> -2.0, &X[start, 0],
                     &centers[0, 0], <floating> 0.0, dots)
            # Results go straight to the rows' own output slots, which no other thread touches.
            select_rows(dots, n_rows, n_centers, &centers_sq_norms[0], n_nearest,
                        &labels[start] if want_nearest else NULL,
                        &sq_distances[start] if want_nearest else NULL,
                        &top_labels[start] if want_top_two else NULL,
                        &top_sq_distances[start] if want_top_two else NULL,
                        &second_labels[start] if want_top_two else NULL,
                        &second_sq_distances[start] if want_top_two else NULL)
            if not row_norms:
                continue
            for i in range(n_rows):
                row = start + i
                x_sq = dot(n_features, &X[row, 0], &X[row, 0])
                if keep_norms:
                    rows_sq_norms[row] = x_sq
                if want_nearest:
                    sq_distances[row] = max(x_sq + sq_distances[row], <floating> 0.0)
                if want_top_two:
                    top_sq_distances[row] = max(x_sq + top_sq_distances[row], <floating> 0.0)
                    second_sq_distances[row] = max(x_sq + second_sq_distances[row],
                                                   <floating> 0.0)
        free(dots)
