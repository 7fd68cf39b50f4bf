/* OpenMP when the build has it, a one-thread answer when it does not.
 *
 * setup.py adds -fopenmp only where the compiler supports it; this header keeps the kernels
 * compiling either way, so they never need a compile-time switch of their own. */
#ifndef SKMK_OMP_COMPAT_H
#define SKMK_OMP_COMPAT_H

#ifdef _OPENMP
#include <omp.h>
static int skmk_omp_max_threads(void) { return omp_get_max_threads(); }
static int skmk_openmp_enabled(void) { return 1; }
#else
static int skmk_omp_max_threads(void) { return 1; }
static int skmk_openmp_enabled(void) { return 0; }
#endif

#endif
