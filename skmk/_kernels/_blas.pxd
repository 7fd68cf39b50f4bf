# Level-1/3 BLAS for the fused float32/float64 kernels, called through scipy's cython_blas so the
# kernels link against the BLAS scipy ships and never hold the GIL.
from cython cimport floating
from scipy.linalg.cython_blas cimport sdot, ddot, sgemm, dgemm


cdef inline floating dot(int n, const floating *x, const floating *y) noexcept nogil:
    """Return x . y for two contiguous vectors of length n."""
    cdef int inc = 1
    if floating is float:
        return sdot(&n, <float *> x, &inc, <float *> y, &inc)
    else:
        return ddot(&n, <double *> x, &inc, <double *> y, &inc)


cdef inline void gemm_abt(
    int n_rows_a, int n_rows_b, int n_cols,
    floating alpha, const floating *a, const floating *b, floating beta, floating *out,
) noexcept nogil:
    """out = alpha * a @ b.T + beta * out, all matrices C-contiguous (row-major).

    a is (n_rows_a, n_cols), b is (n_rows_b, n_cols) and out is (n_rows_a, n_rows_b). In BLAS's
    column-major view, row-major out is out.T = b @ a.T, hence the swapped operands below.
    """
    cdef char *trans_b = 'T'
    cdef char *trans_a = 'N'
    if floating is float:
        sgemm(trans_b, trans_a, &n_rows_b, &n_rows_a, &n_cols, &alpha, <float *> b, &n_cols,
              <float *> a, &n_cols, &beta, out, &n_rows_b)
    else:
        dgemm(trans_b, trans_a, &n_rows_b, &n_rows_a, &n_cols, &alpha, <double *> b, &n_cols,
              <double *> a, &n_cols, &beta, out, &n_rows_b)
