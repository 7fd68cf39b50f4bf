/* In-place unnormalized Walsh–Hadamard transform of one vector of length n = 2^p.
 *
 * Written in C so that the butterflies vectorize: for half >= 4 the inner loop runs over
 * contiguous, non-aliasing spans. On x86-64 with GCC the function is compiled twice, for AVX2
 * and for the baseline, and the loader picks the one the CPU runs (target_clones); elsewhere it
 * is compiled once for the baseline. */
#ifndef SKMK_FWHT_H
#define SKMK_FWHT_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKMK_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SKMK_TARGET_CLONES
#endif

#define SKMK_DEFINE_FWHT(NAME, T)                                                        \
SKMK_TARGET_CLONES                                                                       \
static void NAME(T *restrict x, int n) {                                                 \
    int half = 1;                                                                        \
    if (n >= 8) {                                                                        \
        /* The first three levels as one 8-point transform per block, in registers:     \
           spans of 1, 2 and 4 elements are too short to vectorize as loops. */          \
        for (int b = 0; b < n; b += 8) {                                                 \
            T *v = x + b;                                                                \
            T a0 = v[0] + v[1], a1 = v[0] - v[1], a2 = v[2] + v[3], a3 = v[2] - v[3];    \
            T a4 = v[4] + v[5], a5 = v[4] - v[5], a6 = v[6] + v[7], a7 = v[6] - v[7];    \
            T c0 = a0 + a2, c1 = a1 + a3, c2 = a0 - a2, c3 = a1 - a3;                    \
            T c4 = a4 + a6, c5 = a5 + a7, c6 = a4 - a6, c7 = a5 - a7;                    \
            v[0] = c0 + c4; v[1] = c1 + c5; v[2] = c2 + c6; v[3] = c3 + c7;              \
            v[4] = c0 - c4; v[5] = c1 - c5; v[6] = c2 - c6; v[7] = c3 - c7;              \
        }                                                                                \
        half = 8;                                                                        \
    }                                                                                    \
    for (; half < n; half <<= 1) {                                                       \
        for (int start = 0; start < n; start += 2 * half) {                              \
            T *restrict low = x + start;                                                 \
            T *restrict high = x + start + half;                                         \
            for (int j = 0; j < half; j++) {                                             \
                T a = low[j], b = high[j];                                               \
                low[j] = a + b;                                                          \
                high[j] = a - b;                                                         \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
}

SKMK_DEFINE_FWHT(skmk_fwht_float, float)
SKMK_DEFINE_FWHT(skmk_fwht_double, double)

#endif
