/* argmin_j (a[j] + b[j]) over contiguous arrays, written so the compiler vectorizes it.
 *
 * A scalar "if (v < best)" loop runs at about one element per cycle because each step depends
 * on the last. Keeping SKMK_LANES independent running minima breaks that chain: at -O3 the
 * lane loop becomes compares and blends on vector registers. Ties go to the lowest index, as in
 * the scalar loop: within a lane a later element must be strictly smaller, and across lanes the
 * lowest index among equal minima wins. */
#ifndef SKMK_ARGMIN_H
#define SKMK_ARGMIN_H

#define SKMK_LANES 16

#define SKMK_DEFINE_ARGMIN_SUM(NAME, T)                                                  \
static inline int NAME(const T *a, const T *b, int n, T *best_value) {                  \
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
