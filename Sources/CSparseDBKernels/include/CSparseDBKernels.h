#ifndef CSPARSEDB_KERNELS_H
#define CSPARSEDB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "forward_row.h"

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `crc` (0 to start). Uses the CPU's
/// crc32 instruction (SSE 4.2) when present, else a portable table; both give the same value.
uint32_t sparsedb_crc32c(uint32_t crc, const void *data, size_t length);

/// Whether `sparsedb_crc32c` runs on the CPU's crc32 instruction.
int sparsedb_crc32c_is_hardware(void);

/// The f32 scores of `rows` CSR rows of `width` slots each (`dims` and `values` row after row):
/// `scores[r]` = Σ query[dims[j]] · values[j] over row r's slots, summed in f32 in an
/// unspecified order. Every product must be ≥ 0 (non-negative query and values): the rounding
/// error of `scores[r]` is then at most width · 2⁻²⁴ · (1 + 2⁻¹⁰) · `scores[r]`, plus underflow.
/// Every `dims` entry must index inside `query`: the caller checks the rows.
void sparsedb_csr_scores(const float *query, const uint16_t *dims, const float *values, size_t rows, size_t width, float *scores);

/// Scores of cached sparse rows (ForwardCache.swift): row r of `storage` starts at `offsets[r]`
/// and holds n = (offsets[r + 1] − offsets[r]) / 2 entries, n u16 dimensions then n binary16
/// weights. `scores[i]` = Σ query[dim] · weight over row `rows[i]` and `magnitudes[i]` = Σ of
/// |query[dim] · weight|, each summed in f32 in an unspecified order, so each is within
/// n · 2⁻²⁴ · magnitudes[i] (plus underflow) of its exact value over the half-precision weights.
/// Every dimension must index inside `query`.
void sparsedb_cached_rows_scores(const float *query, const uint16_t *storage, const uint32_t *offsets, const uint32_t *rows, size_t count,
                                 float *scores, float *magnitudes);

/// The value of rank `n` (0 = the largest) among `values[0 ..< count]`, which it reorders.
/// Needs `n < count` and no NaN.
float sparsedb_nth_largest(float *values, size_t count, size_t n);
/// `sparsedb_cached_rows_scores` without F16C or AVX2 (what other CPUs run; tests compare the two).
void sparsedb_cached_rows_scores_portable(const float *query, const uint16_t *storage, const uint32_t *offsets, const uint32_t *rows,
                                          size_t count, float *scores, float *magnitudes);

/// Writes to `chosen` the indices, increasing, of the `n` largest of `values[0 ..< count]`
/// (non-negative, no NaN; ties at the cut taken in index order) and returns how many (min(n,
/// count); 0 when memory runs out).
size_t sparsedb_largest_indices(const float *values, size_t count, size_t n, uint32_t *chosen);

/// The f32 dot products of `count` rows (row r at `rows + r · stride`) with the first
/// `dimensions` values of `query`, into `scores`; summed in an unspecified order, so each is
/// within dimensions · 2⁻²⁴ · Σ|rᵢqᵢ| (plus underflow) of the exact value. Returns the largest
/// of the scores exactly as stored (−∞ when `count` is 0), or NaN when any score is NaN.
float sparsedb_dense_scores(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores);

/// `sparsedb_dense_scores` over rows of IEEE half-precision values (binary16 bit patterns, row r
/// at `rows + r · stride`): each value is widened to f32 exactly and the products summed in f32,
/// so the same rounding bound holds. Returns as `sparsedb_dense_scores` does.
float sparsedb_dense_scores_f16(const uint16_t *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores);

/// Widens `count` half-precision values (binary16 bit patterns) to f32, exactly.
void sparsedb_f16_to_f32(const uint16_t *source, float *target, size_t count);

/// Narrows `count` f32 values to half precision, rounding to nearest (ties to even); values
/// beyond ±65504 become infinities.
void sparsedb_f32_to_f16(const float *source, uint16_t *target, size_t count);

/// The half-precision copy of `count` f32 rows of `width` values that a scan of an f32 field
/// reads in their place: `halves` (count × width) the rows rounded to nearest, `norms[r]` ≥
/// ‖copy of row r‖ and `residuals[r]` ≥ ‖row r − its copy‖ (each rounded up; 0 where the copy is
/// exact). Returns 0 (the outputs then unspecified) when a value rounds beyond half precision's
/// range (past 65504) or a row's residual exceeds 2⁻¹⁰ of its norm (tiny values), else 1.
int sparsedb_half_copy(const float *rows, size_t count, size_t width, uint16_t *halves, float *norms, float *residuals);

/// The code paths the functions above take on a CPU without F16C (and off x86-64), for tests on
/// CPUs that have it: the same results, but for NaN payloads (stored rows are finite).
float sparsedb_half_to_float_portable(uint16_t half);
uint16_t sparsedb_float_to_half_portable(float value);
float sparsedb_dense_scores_f16_portable(const uint16_t *rows, size_t count, size_t stride, const float *query, size_t dimensions,
                                         float *scores);

/// Maps at least `bytes` of zeroed, private, read–write memory starting on a 2 MiB boundary and
/// advises the kernel to back it with transparent huge pages (madvise MADV_HUGEPAGE, where the
/// platform has it); NULL when the mapping fails. Physical pages are taken only where touched.
/// Release with `sparsedb_rows_unmap(base, bytes)`, the same `bytes`.
void *sparsedb_rows_map(size_t bytes);

/// Unmaps a region from `sparsedb_rows_map` (NULL is ignored).
void sparsedb_rows_unmap(void *base, size_t bytes);

/// Keeps, in place and in order, the `count` candidates of a MaxScore window (from `base`) whose
/// upper bound plus their word's `rest` (what the lists still to come can add) is not below
/// `bar`; sets `slots[d − base]` to a kept candidate's new index and to `spare` for a dropped
/// one. Returns how many are kept.
size_t sparsedb_maxscore_keep_reachable(
    uint32_t *docs, float *upper, float *lower, int32_t *slots, size_t count, const float *rest, float bar, uint32_t base,
    int32_t spare);

/// Asks the CPU to bring the cache line at `address` in (a hint: never faults, any address).
static inline void sparsedb_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// The candidates of a MaxScore window of `64 · words` documents from `base`: document
/// `base + s` is one when bit s of `touched` is set (an essential list has it), bit s of
/// `admitted` is set (it is live and passes the filter), and `bounds[2s] + rest[s / 64] < bar`
/// is false (its upper bound plus what the other lists can add to a document of its word can
/// still reach the threshold). Writes each candidate, in increasing order, as `docs[n]`,
/// `upper[n]` = bounds[2s], `lower[n]` = bounds[2s + 1], and sets `slots[s] = n`; returns the
/// number of candidates. Clears `touched` and every word's sums in `bounds` (2 · 64 floats per
/// word) for the next window.
size_t sparsedb_maxscore_window_candidates(
    float *bounds, uint64_t *touched, size_t words, const uint64_t *admitted, const float *rest, float bar, uint32_t base,
    uint32_t *docs, float *upper, float *lower, int32_t *slots);

#endif

#include <pthread.h>

/// Initialises `lock` as a writer-preferring reader–writer lock (glibc's
/// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP): once a writer waits, new readers wait behind
/// it, so a stream of readers cannot starve the writer. Returns pthread's result code.
int sparsedb_rwlock_init_writer_preferring(pthread_rwlock_t *lock);
