"""Fast Walsh–Hadamard transform of the rows of a matrix, in place.

The FJLT projection (random signs, Hadamard, subsample) spends its time here: O(d log d) per row
against O(d · target) for a dense random projection. Rows are independent, so threads take
rows; each row's butterflies (``_fwht.h``) run in L1 cache.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc


cdef extern from "_fwht.h":
    void skmk_fwht_float(float *x, int n) nogil
    void skmk_fwht_double(double *x, int n) nogil


def fwht_rows(floating[:, ::1] X, int n_threads):
    """Unnormalized Walsh–Hadamard transform of every row of X (row length a power of two)."""
    cdef:
        int n_rows = X.shape[0]
        int n = X.shape[1]
        int i

    if n & (n - 1):
        raise ValueError(f"row length must be a power of two, got {n}")
    if n_rows == 0:
        return
    with nogil:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            if floating is float:
                skmk_fwht_float(&X[i, 0], n)
            else:
                skmk_fwht_double(&X[i, 0], n)


def fjlt_rows(
    const floating[:, ::1] X,               # IN  (n_samples, n_features)
    const floating[::1] signs,              # IN  (n_features,) random ±1
    const long[::1] selected,               # IN  (target,) output coordinates kept, < padded
    floating scale,                         # IN  1 / sqrt(target) preserves norms on average
    floating[:, ::1] out,                   # OUT (n_samples, target)
    int padded,                             # IN  power of two >= n_features
    int n_threads,
):
    """Subsampled randomized Hadamard transform of each row: scale * (H D x)[selected].

    Each row is signed and zero-padded into a thread-local buffer, transformed in L1 cache and
    gathered, so no padded copy of X is ever materialized.
    """
    cdef:
        int n_rows = X.shape[0]
        int n_features = X.shape[1]
        int target = selected.shape[0]
        int i, j
        floating *buffer

    if n_rows == 0:
        return
    buffer = NULL
    with nogil, parallel(num_threads=n_threads):
        buffer = <floating *> malloc(sizeof(floating) * padded)
        for i in prange(n_rows, schedule="static"):
            for j in range(n_features):
                buffer[j] = signs[j] * X[i, j]
            for j in range(n_features, padded):
                buffer[j] = 0
            if floating is float:
                skmk_fwht_float(buffer, padded)
            else:
                skmk_fwht_double(buffer, padded)
            for j in range(target):
                out[i, j] = scale * buffer[selected[j]]
        free(buffer)
