/* preadv(2) where the platform has it (the fixed-frame RecordIO reader, _recordio.pyx);
 * elsewhere a stand-in that fails with ENOSYS, and the reader takes its general path. */
#ifndef SKMK_PREADV_H
#define SKMK_PREADV_H

#include <errno.h>
#include <stddef.h>

#if defined(_WIN32)
struct skmk_iovec { void *iov_base; size_t iov_len; };
#define SKMK_IOV_MAX 1024
static long long skmk_preadv(int fd, const struct skmk_iovec *iov, int count, long long offset) {
    (void) fd; (void) iov; (void) count; (void) offset;
    errno = ENOSYS;
    return -1;
}
#else
#include <limits.h>
#include <sys/uio.h>
#define skmk_iovec iovec
#if defined(IOV_MAX)
#define SKMK_IOV_MAX IOV_MAX
#else
#define SKMK_IOV_MAX 1024
#endif
static long long skmk_preadv(int fd, const struct iovec *iov, int count, long long offset) {
    return (long long) preadv(fd, iov, count, (off_t) offset);
}
#endif

#endif
