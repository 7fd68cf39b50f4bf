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
    for (int half = 1; half < n; half <<= 1) {                                           \
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
