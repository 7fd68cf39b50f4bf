/* argmin_j (a[j] + b[j]) over contiguous arrays, in vector registers.
 *
 * A scalar "if (v < best)" loop runs at about one element per cycle because each step depends
 * on the last. Keeping SKMK_LANES independent running minima breaks that chain: compares and
 * blends on vector registers. Ties go to the lowest index, as in the scalar loop: within a lane
 * a later element must be strictly smaller, and across lanes the lowest index among equal
 * minima wins. */
#ifndef SKMK_ARGMIN_H
#define SKMK_ARGMIN_H

#include <math.h>

#define SKMK_LANES 16

/* On x86-64 with GCC the row selection is compiled twice, for x86-64-v3 (AVX2) and the
 * baseline, and the loader picks the one the CPU runs (as in _bounded.h). With the argmin in
 * vector registers (below) an epoch of 1,000,000 rows in 64 dimensions against 600 centers
 * takes 0.83 s; with the selection as the compiler first vectorized it, 1.08 s. */
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

#if defined(__GNUC__)
/* With GCC or Clang the lanes are written as vector types (two vectors of 32 bytes, so two
 * independent chains): left to the auto-vectorizer inside the per-row selection, the lane loop
 * came out as sixteen scalar compare-and-moves (the selection took two thirds of the GEMM's
 * time on 64-dimensional rows). The blend is written with masks, which C vector types allow
 * where a vector ?: is C++ only. */
typedef float skmk_am_f8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int skmk_am_i8 __attribute__((vector_size(32)));
typedef double skmk_am_d4 __attribute__((vector_size(32), aligned(8), may_alias));
typedef long long skmk_am_l4 __attribute__((vector_size(32)));

#define SKMK_DEFINE_ARGMIN_SUM(NAME, T, V, I, IT)                                        \
static SKMK_ALWAYS_INLINE int NAME(const T *a, const T *b, int n, T *best_value) {      \
    const int w = (int) (sizeof(V) / sizeof(T));                                         \
    V best0, best1;                                                                      \
    I index0, index1, at0, at1, step;                                                    \
    int j, lane, winner = -1;                                                            \
    T value, best = 0;                                                                   \
    if (n < 2 * w) {                                                                     \
        for (j = 0; j < n; j++) {                                                        \
            value = a[j] + b[j];                                                         \
            if (winner < 0 || value < best) { best = value; winner = j; }                \
        }                                                                                \
        *best_value = best;                                                              \
        return winner;                                                                   \
    }                                                                                    \
    for (lane = 0; lane < w; lane++) { at0[lane] = (IT) lane; at1[lane] = (IT) (w + lane); \
                                       step[lane] = (IT) (2 * w); }                     \
    best0 = *(const V *) a + *(const V *) b;                                             \
    best1 = *(const V *) (a + w) + *(const V *) (b + w);                                 \
    index0 = at0; index1 = at1;                                                          \
    for (j = 2 * w; j + 2 * w <= n; j += 2 * w) {                                        \
        V v0 = *(const V *) (a + j) + *(const V *) (b + j);                              \
        V v1 = *(const V *) (a + j + w) + *(const V *) (b + j + w);                      \
        I lt0 = (I) (v0 < best0), lt1 = (I) (v1 < best1);                                \
        at0 += step; at1 += step;                                                        \
        best0 = (V) (((I) v0 & lt0) | ((I) best0 & ~lt0));                               \
        best1 = (V) (((I) v1 & lt1) | ((I) best1 & ~lt1));                               \
        index0 = (at0 & lt0) | (index0 & ~lt0);                                          \
        index1 = (at1 & lt1) | (index1 & ~lt1);                                          \
    }                                                                                    \
    /* Lowest index among equal minima: lanes are compared by (value, index). */          \
    best = best0[0]; winner = (int) index0[0];                                           \
    for (lane = 0; lane < w; lane++) {                                                   \
        if (best0[lane] < best || (best0[lane] == best && (int) index0[lane] < winner)) { \
            best = best0[lane]; winner = (int) index0[lane];                             \
        }                                                                                \
        if (best1[lane] < best || (best1[lane] == best && (int) index1[lane] < winner)) { \
            best = best1[lane]; winner = (int) index1[lane];                             \
        }                                                                                \
    }                                                                                    \
    for (; j < n; j++) {                                                                 \
        value = a[j] + b[j];                                                             \
        if (value < best) { best = value; winner = j; }                                  \
    }                                                                                    \
    *best_value = best;                                                                  \
    return winner;                                                                       \
}

SKMK_DEFINE_ARGMIN_SUM(skmk_argmin_sum_float, float, skmk_am_f8, skmk_am_i8, int)
SKMK_DEFINE_ARGMIN_SUM(skmk_argmin_sum_double, double, skmk_am_d4, skmk_am_l4, long long)
#else
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
#endif

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
