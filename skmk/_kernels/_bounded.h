/* Inner loops of the bounded nearest-neighbour search (_bounded.pyx), written so that -O3
 * vectorizes them without -ffast-math.
 *
 * On x86-64 with GCC each function is compiled twice, for x86-64-v3 (AVX2 + FMA) and for the
 * baseline, and the loader picks the one the CPU runs (target_clones, as in _fwht.h). That also
 * keeps them out of line: inlined into the search loop, their accumulators spilled to the stack
 * and ran several times slower than the function alone.
 *
 * With GCC or Clang both are written with vector types (32-byte vectors, unaligned loads):
 * loops over arrays of 16 partial sums, left to the auto-vectorizer, came out of GCC 12 as
 * permutes and blends, and the search ran 3x slower (Fashion-MNIST batch against 1,000 extra
 * centers, one thread: 46 ms, now 13 ms). Other compilers get the plain loops.
 *
 * skmk_sq_dist: sum_j (a[j] - b[j])^2, in four independent vector accumulators.
 * skmk_next_below: the first j >= start with a[j] + b[j] < threshold. The search skips almost
 *   every element, so four vectors at a time are tested with a branch-free "any below", and
 *   only a step that has a hit is walked element by element. */
#ifndef SKMK_BOUNDED_H
#define SKMK_BOUNDED_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SKMK_BOUNDED_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SKMK_BOUNDED_CLONES
#endif

#define SKMK_DIST_LANES 16

#if defined(__GNUC__)
/* GCC/Clang vector types: 32 bytes of floats or doubles, loadable from any element address.
 * Four independent accumulators (4 x 32 bytes per step) keep the loop out of one dependency
 * chain. Written with plain arrays of partial sums instead, GCC 12 "vectorized" the lanes
 * through permutes and blends and ran the function about 4x slower. */
typedef float skmk_f8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef double skmk_d4 __attribute__((vector_size(32), aligned(8), may_alias));

#define SKMK_DEFINE_SQ_DIST(NAME, T, V)                                                  \
SKMK_BOUNDED_CLONES                                                                      \
static T NAME(const T *a, const T *b, int n) {                                           \
    const int width = (int) (sizeof(V) / sizeof(T));                                     \
    V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};                                            \
    T total = 0;                                                                         \
    int j = 0, lane;                                                                     \
    for (; j + 4 * width <= n; j += 4 * width) {                                         \
        V d0 = *(const V *) (a + j) - *(const V *) (b + j);                              \
        V d1 = *(const V *) (a + j + width) - *(const V *) (b + j + width);              \
        V d2 = *(const V *) (a + j + 2 * width) - *(const V *) (b + j + 2 * width);      \
        V d3 = *(const V *) (a + j + 3 * width) - *(const V *) (b + j + 3 * width);      \
        s0 += d0 * d0;                                                                   \
        s1 += d1 * d1;                                                                   \
        s2 += d2 * d2;                                                                   \
        s3 += d3 * d3;                                                                   \
    }                                                                                    \
    for (; j + width <= n; j += width) {                                                 \
        V d = *(const V *) (a + j) - *(const V *) (b + j);                               \
        s0 += d * d;                                                                     \
    }                                                                                    \
    s0 = (s0 + s1) + (s2 + s3);                                                          \
    for (lane = 0; lane < width; lane++) total += s0[lane];                              \
    for (; j < n; j++) {                                                                 \
        T diff = a[j] - b[j];                                                            \
        total += diff * diff;                                                            \
    }                                                                                    \
    return total;                                                                        \
}
#else
#define SKMK_DEFINE_SQ_DIST(NAME, T, V)                                                  \
static T NAME(const T *a, const T *b, int n) {                                           \
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
#endif

#if defined(__GNUC__)
typedef int skmk_i8 __attribute__((vector_size(32)));
typedef long long skmk_l4 __attribute__((vector_size(32)));

/* Four vectors per step; a step with any element below the threshold is walked element by
 * element (the same scalar sum, so the answer is exactly the scalar loop's). */
#define SKMK_DEFINE_NEXT_BELOW(NAME, T, V, M)                                            \
SKMK_BOUNDED_CLONES                                                                      \
static int NAME(const T *a, const T *b, int start, int n, T threshold) {                 \
    const int width = (int) (sizeof(V) / sizeof(T));                                     \
    const V limit = (V) {0} + threshold;                                                 \
    int j = start, lane;                                                                 \
    for (; j + 4 * width <= n; j += 4 * width) {                                         \
        M below = (*(const V *) (a + j) + *(const V *) (b + j) < limit)                  \
            | (*(const V *) (a + j + width) + *(const V *) (b + j + width) < limit)      \
            | (*(const V *) (a + j + 2 * width) + *(const V *) (b + j + 2 * width) < limit) \
            | (*(const V *) (a + j + 3 * width) + *(const V *) (b + j + 3 * width) < limit); \
        skmk_l4 any = (skmk_l4) below;                                                   \
        if (any[0] | any[1] | any[2] | any[3]) {                                         \
            for (lane = 0; lane < 4 * width; lane++) {                                   \
                if (a[j + lane] + b[j + lane] < threshold) return j + lane;              \
            }                                                                            \
        }                                                                                \
    }                                                                                    \
    for (; j < n; j++) {                                                                 \
        if (a[j] + b[j] < threshold) return j;                                           \
    }                                                                                    \
    return n;                                                                            \
}
#else
#define SKMK_DEFINE_NEXT_BELOW(NAME, T, V, M)                                            \
static int NAME(const T *a, const T *b, int start, int n, T threshold) {                 \
    int j;                                                                               \
    for (j = start; j < n; j++) {                                                        \
        if (a[j] + b[j] < threshold) return j;                                           \
    }                                                                                    \
    return n;                                                                            \
}
#endif

SKMK_DEFINE_SQ_DIST(skmk_sq_dist_float, float, skmk_f8)
SKMK_DEFINE_SQ_DIST(skmk_sq_dist_double, double, skmk_d4)
SKMK_DEFINE_NEXT_BELOW(skmk_next_below_float, float, skmk_f8, skmk_i8)
SKMK_DEFINE_NEXT_BELOW(skmk_next_below_double, double, skmk_d4, skmk_l4)

#endif
