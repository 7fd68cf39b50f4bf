/* argmin_j (a[j] + b[j]) over contiguous arrays, written so the compiler vectorizes it.
 *
 * A scalar "if (v < best)" loop runs at about one element per cycle because each step depends
 * on the last. Keeping SKMK_LANES independent running minima breaks that chain: at -O3 the
 * lane loop becomes compares and blends on vector registers. Ties go to the lowest index, as in
 * the scalar loop: within a lane a later element must be strictly smaller, and across lanes the
 * lowest index among equal minima wins. */
#ifndef SKMK_ARGMIN_H
#define SKMK_ARGMIN_H

#include <math.h>

#define SKMK_LANES 16

/* On x86-64 with GCC the row selection is compiled twice, for x86-64-v3 (AVX2) and the
 * baseline, and the loader picks the one the CPU runs (as in _bounded.h): the baseline's SSE2
 * has no blend, and its compare-and-select took the GEMM assignment of 64-dimensional rows to
 * twice the GEMM's time (1,000,000 rows against 600 centers: 834 ms, 697 with AVX2). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKMK_ARGMIN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SKMK_ARGMIN_CLONES
#endif

#if defined(__GNUC__)
#define SKMK_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define SKMK_ALWAYS_INLINE inline
#endif

#define SKMK_DEFINE_ARGMIN_SUM(NAME, T)                                                  \
static SKMK_ALWAYS_INLINE int NAME(const T *a, const T *b, int n, T *best_value) {      \
    T best[SKMK_LANES];                                                                  \
    int index[SKMK_LANES];                                                               \
    int j = 0, lane, winner = 0;                                                         \
    for (lane = 0; lane < SKMK_LANES; lane++) {                                          \
        best[lane] = a[0] + b[0];                                                        \
        index[lane] = 0;                                                                 \
    }                                                                                    \
    for (; j + SKMK_LANES <= n; j += SKMK_LANES) {                                       \
        for (lane = 0; lane < SKMK_LANES; lane++) {                                      \
            T value = a[j + lane] + b[j + lane];                                         \
            int smaller = value < best[lane];                                            \
            best[lane] = smaller ? value : best[lane];                                   \
            index[lane] = smaller ? j + lane : index[lane];                              \
        }                                                                                \
    }                                                                                    \
    for (; j < n; j++) {                                                                 \
        T value = a[j] + b[j];                                                           \
        if (value < best[0] || (value == best[0] && j < index[0])) {                     \
            best[0] = value;                                                             \
            index[0] = j;                                                                \
        }                                                                                \
    }                                                                                    \
    for (lane = 1; lane < SKMK_LANES; lane++) {                                          \
        if (best[lane] < best[winner] ||                                                 \
            (best[lane] == best[winner] && index[lane] < index[winner])) {               \
            winner = lane;                                                               \
        }                                                                                \
    }                                                                                    \
    *best_value = best[winner];                                                          \
    return index[winner];                                                                \
}

SKMK_DEFINE_ARGMIN_SUM(skmk_argmin_sum_float, float)
SKMK_DEFINE_ARGMIN_SUM(skmk_argmin_sum_double, double)

/* skmk_select_rows: for each row i of a chunk's ``dots`` (n_rows x n_centers, -2 x.c), the
 * nearest of the first n_nearest centers (norms[j] + dots[j]; to labels[i] / sq[i]) and, when
 * ``top`` is not NULL, the two nearest of the others (indices relative to them; to top[i],
 * top_sq[i], second[i], second_sq[i]). The argmin is inlined into each compiled version, so
 * the selection runs as vector code for the whole chunk. Two passes of the argmin, the winner
 * masked out for the second, run about as fast as one and beat a single scan that keeps two
 * running minima (its compare-and-shift chain does not vectorize). */
#define SKMK_DEFINE_SELECT_ROWS(NAME, T, ARGMIN)                                         \
SKMK_ARGMIN_CLONES                                                                       \
static void NAME(T *dots, int n_rows, int n_centers, const T *norms, int n_nearest,      \
                 int *labels, T *sq, int *top, T *top_sq, int *second, T *second_sq) {   \
    int i, winner;                                                                       \
    T kept;                                                                              \
    for (i = 0; i < n_rows; i++) {                                                       \
        T *row = dots + (long) i * n_centers;                                            \
        if (labels != 0 && n_nearest > 0) {                                              \
            labels[i] = ARGMIN(norms, row, n_nearest, &sq[i]);                           \
        }                                                                                \
        if (top != 0 && n_centers - n_nearest >= 2) {                                    \
            winner = ARGMIN(norms + n_nearest, row + n_nearest, n_centers - n_nearest,   \
                            &top_sq[i]);                                                 \
            top[i] = winner;                                                             \
            kept = row[n_nearest + winner];                                              \
            row[n_nearest + winner] = (T) INFINITY;                                      \
            second[i] = ARGMIN(norms + n_nearest, row + n_nearest,                       \
                               n_centers - n_nearest, &second_sq[i]);                    \
            row[n_nearest + winner] = kept;                                              \
        }                                                                                \
    }                                                                                    \
}

SKMK_DEFINE_SELECT_ROWS(skmk_select_rows_float, float, skmk_argmin_sum_float)
SKMK_DEFINE_SELECT_ROWS(skmk_select_rows_double, double, skmk_argmin_sum_double)

#endif
