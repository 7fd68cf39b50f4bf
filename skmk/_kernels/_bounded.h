/* Inner loops of the bounded nearest-neighbour search (_bounded.pyx), written so that -O3
 * vectorizes them without -ffast-math.
 *
 * On x86-64 with GCC each function is compiled twice, for AVX2 and for the baseline, and the
 * loader picks the one the CPU runs (target_clones, as in _fwht.h). That also keeps them out of
 * line: inlined into the search loop, the 16 partial sums of skmk_sq_dist spilled to the stack
 * and ran several times slower than the function alone.
 *
 * skmk_sq_dist: sum_j (a[j] - b[j])^2. A single running sum is a dependency chain the compiler
 *   may not reorder; SKMK_DIST_LANES independent partial sums let it keep them in vector
 *   registers.
 * skmk_next_below: the first j >= start with a[j] + b[j] < threshold. The search skips almost
 *   every element, so whole blocks are tested with a branch-free "any below" that vectorizes,
 *   and only a block that has a hit is walked element by element. */
#ifndef SKMK_BOUNDED_H
#define SKMK_BOUNDED_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKMK_BOUNDED_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SKMK_BOUNDED_CLONES
#endif

#define SKMK_DIST_LANES 16
#define SKMK_SCAN_BLOCK 32

#define SKMK_DEFINE_SQ_DIST(NAME, T)                                                     \
SKMK_BOUNDED_CLONES                                                                      \
static T NAME(const T *a, const T *b, int n) {                                   \
    T partial[SKMK_DIST_LANES];                                                          \
    T total = 0;                                                                         \
    int j = 0, lane;                                                                     \
    for (lane = 0; lane < SKMK_DIST_LANES; lane++) partial[lane] = 0;                    \
    for (; j + SKMK_DIST_LANES <= n; j += SKMK_DIST_LANES) {                             \
        for (lane = 0; lane < SKMK_DIST_LANES; lane++) {                                 \
            T diff = a[j + lane] - b[j + lane];                                          \
            partial[lane] += diff * diff;                                                \
        }                                                                                \
    }                                                                                    \
    for (; j < n; j++) {                                                                 \
        T diff = a[j] - b[j];                                                            \
        total += diff * diff;                                                            \
    }                                                                                    \
    for (lane = 0; lane < SKMK_DIST_LANES; lane++) total += partial[lane];               \
    return total;                                                                        \
}

#define SKMK_DEFINE_NEXT_BELOW(NAME, T)                                                  \
SKMK_BOUNDED_CLONES                                                                      \
static int NAME(const T *a, const T *b, int start, int n, T threshold) {         \
    int j = start, lane;                                                                 \
    /* walk to a block boundary, then test whole blocks */                              \
    for (; j < n && (j % SKMK_SCAN_BLOCK) != 0; j++) {                                   \
        if (a[j] + b[j] < threshold) return j;                                           \
    }                                                                                    \
    for (; j + SKMK_SCAN_BLOCK <= n; j += SKMK_SCAN_BLOCK) {                             \
        int any = 0;                                                                     \
        for (lane = 0; lane < SKMK_SCAN_BLOCK; lane++) {                                 \
            any |= (a[j + lane] + b[j + lane] < threshold);                              \
        }                                                                                \
        if (any) {                                                                       \
            for (lane = 0; lane < SKMK_SCAN_BLOCK; lane++) {                             \
                if (a[j + lane] + b[j + lane] < threshold) return j + lane;              \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    for (; j < n; j++) {                                                                 \
        if (a[j] + b[j] < threshold) return j;                                           \
    }                                                                                    \
    return n;                                                                            \
}

SKMK_DEFINE_SQ_DIST(skmk_sq_dist_float, float)
SKMK_DEFINE_SQ_DIST(skmk_sq_dist_double, double)
SKMK_DEFINE_NEXT_BELOW(skmk_next_below_float, float)
SKMK_DEFINE_NEXT_BELOW(skmk_next_below_double, double)

#endif
