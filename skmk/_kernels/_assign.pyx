"""Nearest-center assignment by chunked GEMM.

For every row x of X the kernel finds argmin_j ||x - c_j||^2 and that squared distance, using
||x - c||^2 = ||x||^2 + ||c||^2 - 2 x.c: the x.c terms for a chunk of rows come from one GEMM
into a small thread-local buffer, and the argmin is taken while the buffer is hot in cache. The
full (n_samples, n_centers) distance matrix never exists, so memory stays O(chunk * n_centers)
per thread whatever n_samples is.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_MAX
from libc.stdlib cimport free, malloc

from ._blas cimport dot, gemm_abt


cdef extern from "_omp_compat.h":
    int skmk_omp_max_threads() nogil
    int skmk_openmp_enabled() nogil


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
    int[::1] labels,                        # OUT (n_samples,)
    floating[::1] sq_distances,             # OUT (n_samples,)
    int n_threads,
    int chunk_size,
):
    """Label each row of X with its nearest center and that squared Euclidean distance.

    Ties go to the lowest center index. Distances are clipped at 0 (the expanded form can go
    slightly negative by rounding when x sits on a center).
    """
    cdef:
        int n_samples = X.shape[0]
        int n_features = X.shape[1]
        int n_centers = centers.shape[0]
        int n_chunks = (n_samples + chunk_size - 1) // chunk_size
        int chunk, start, n_rows, i, j, best_j
        floating best, value, x_sq
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
            for i in range(n_rows):
                best = DBL_MAX
                best_j = 0
                for j in range(n_centers):
                    value = centers_sq_norms[j] + dots[i * n_centers + j]
                    if value < best:
                        best = value
                        best_j = j
                x_sq = dot(n_features, &X[start + i, 0], &X[start + i, 0])
                labels[start + i] = best_j
                sq_distances[start + i] = max(x_sq + best, <floating> 0.0)
        free(dots)
