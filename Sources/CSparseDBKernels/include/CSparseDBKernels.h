#ifndef CSPARSEDB_KERNELS_H
#define CSPARSEDB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `crc` (0 to start). Uses the CPU's
/// crc32 instruction (SSE 4.2) when present, else a portable table; both give the same value.
uint32_t sparsedb_crc32c(uint32_t crc, const void *data, size_t length);

/// Whether `sparsedb_crc32c` runs on the CPU's crc32 instruction.
int sparsedb_crc32c_is_hardware(void);

#endif

#include <pthread.h>

/// Initialises `lock` as a writer-preferring reader–writer lock (glibc's
/// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP): once a writer waits, new readers wait behind
/// it, so a stream of readers cannot starve the writer. Returns pthread's result code.
int sparsedb_rwlock_init_writer_preferring(pthread_rwlock_t *lock);
