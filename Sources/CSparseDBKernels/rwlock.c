// glibc's writer-preferring reader-writer lock is a GNU extension that Swift's Glibc module does
// not expose, so the attribute is set here.
#define _GNU_SOURCE
#include <pthread.h>
#include "CSparseDBKernels.h"

int sparsedb_rwlock_init_writer_preferring(pthread_rwlock_t *lock) {
    pthread_rwlockattr_t attr;
    int rc = pthread_rwlockattr_init(&attr);
    if (rc != 0) return rc;
#if defined(__GLIBC__)
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    rc = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return rc;
}
