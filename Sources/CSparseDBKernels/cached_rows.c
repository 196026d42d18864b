// Approximate scoring of sparse documents from compact in-memory copies of their forward rows
// (ForwardCache.swift): a row of n entries is n u16 dimensions then n binary16 weights. A query
// scores a few thousand rows at scattered places, so the time is the memory's latency: the
// rows a few places ahead are prefetched whole while the current one is summed. Scores are f32
// sums of rounded weights, used only to choose the documents that are then rescored exactly
// from the stored rows.
#include "cpu_features.h"
#include "CSparseDBKernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// How many rows ahead the prefetches run: 2 to 8 measured alike on 1 M rows of ~108 entries
// (0.33 µs a row against 0.60 without prefetching, this project's machine).
#define ROWS_AHEAD 4

// Row `rows[i]`: its dimensions (the return value) and its entry count, after prefetching the
// row ROWS_AHEAD places on. Both kernels walk the rows through this.
static inline const uint16_t *enter_row(const uint16_t *storage, const uint32_t *offsets, const uint32_t *rows, size_t count, size_t i,
                                        size_t *n) {
    if (i + ROWS_AHEAD < count) {
        uint32_t ahead = rows[i + ROWS_AHEAD];
        const char *start = (const char *)(storage + offsets[ahead]);
        const char *end = (const char *)(storage + offsets[ahead + 1]);
        for (const char *p = start; p < end; p += 64) __builtin_prefetch(p, 0, 3);
    }
    uint32_t r = rows[i];
    *n = (offsets[r + 1] - offsets[r]) / 2;
    return storage + offsets[r];
}

void sparsedb_cached_rows_scores_portable(const float *query, const uint16_t *storage, const uint32_t *offsets, const uint32_t *rows,
                                          size_t count, float *scores, float *magnitudes) {
    for (size_t i = 0; i < count; i++) {
        size_t n;
        const uint16_t *dims = enter_row(storage, offsets, rows, count, i, &n);
        const uint16_t *halves = dims + n;
        float s = 0, m = 0;
        for (size_t j = 0; j < n; j++) {
            float p = query[dims[j]] * sparsedb_half_to_float_portable(halves[j]);
            s += p;
            m += fabsf(p);
        }
        scores[i] = s;
        magnitudes[i] = m;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"), always_inline)) static inline float horizontal_sum(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,f16c"))) static void cached_rows_scores_avx2(const float *query, const uint16_t *storage,
                                                                             const uint32_t *offsets, const uint32_t *rows,
                                                                             size_t count, float *scores, float *magnitudes) {
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t i = 0; i < count; i++) {
        size_t n;
        const uint16_t *dims = enter_row(storage, offsets, rows, count, i, &n);
        const uint16_t *halves = dims + n;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 16 <= n; j += 16) {
            __m256i d0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(dims + j)));
            __m256i d1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(dims + j + 8)));
            __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(halves + j)));
            __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(halves + j + 8)));
            __m256 p0 = _mm256_mul_ps(_mm256_i32gather_ps(query, d0, 4), w0);
            __m256 p1 = _mm256_mul_ps(_mm256_i32gather_ps(query, d1, 4), w1);
            a0 = _mm256_add_ps(a0, p0);
            a1 = _mm256_add_ps(a1, p1);
            m0 = _mm256_add_ps(m0, _mm256_and_ps(p0, absMask));
            m1 = _mm256_add_ps(m1, _mm256_and_ps(p1, absMask));
        }
        if (j + 8 <= n) {
            __m256i d0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(dims + j)));
            __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(halves + j)));
            __m256 p0 = _mm256_mul_ps(_mm256_i32gather_ps(query, d0, 4), w0);
            a0 = _mm256_add_ps(a0, p0);
            m0 = _mm256_add_ps(m0, _mm256_and_ps(p0, absMask));
            j += 8;
        }
        float s = horizontal_sum(_mm256_add_ps(a0, a1));
        float m = horizontal_sum(_mm256_add_ps(m0, m1));
        for (; j < n; j++) {
            float p = query[dims[j]] * _cvtsh_ss(halves[j]);
            s += p;
            m += fabsf(p);
        }
        scores[i] = s;
        magnitudes[i] = m;
    }
}
#endif

void sparsedb_cached_rows_scores(const float *query, const uint16_t *storage, const uint32_t *offsets, const uint32_t *rows, size_t count,
                                 float *scores, float *magnitudes) {
#if defined(__x86_64__)
    if (cpu_has(SPARSEDB_CPU_AVX2) && cpu_has(SPARSEDB_CPU_F16C)) {
        cached_rows_scores_avx2(query, storage, offsets, rows, count, scores, magnitudes);
        return;
    }
#endif
    sparsedb_cached_rows_scores_portable(query, storage, offsets, rows, count, scores, magnitudes);
}

float sparsedb_nth_largest(float *values, size_t count, size_t n) {
    // Quickselect (Hoare partition around the median of the first, middle and last values, so
    // that sorted or reversed input does not make it quadratic): rank n stays inside [lo, hi].
    // Signed indices: j steps below lo when everything is at least the pivot.
    ptrdiff_t lo = 0, hi = (ptrdiff_t)count - 1, target = (ptrdiff_t)n;
    while (lo < hi) {
        float a = values[lo], b = values[lo + (hi - lo) / 2], c = values[hi];
        float pivot = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (values[i] > pivot) i++;
            while (values[j] < pivot) j--;
            if (i <= j) {
                float t = values[i];
                values[i] = values[j];
                values[j] = t;
                i++;
                j--;
            }
        }
        // Now values[lo..j] >= pivot, values[i..hi] <= pivot, and those between equal it.
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else return pivot;
    }
    return values[target];
}

// A non-negative float's bit pattern, which orders like the float (a negative one, which
// callers do not pass, counts as 0).
static inline uint32_t order_key(float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return bits >> 31 ? 0 : bits;
}

size_t sparsedb_largest_indices(const float *values, size_t count, size_t n, uint32_t *chosen) {
    // Non-negative floats order like their bit patterns: count the top 12 bits (the exponent and
    // 4 mantissa bits), find the bucket holding rank n − 1, then take everything above it and,
    // in index order, as many of the bucket's as fill n — the bucket's own order by value settled
    // by sorting just its members. Two passes over the values, no branch on their order.
    if (n >= count) {
        for (size_t i = 0; i < count; i++) chosen[i] = (uint32_t)i;
        return count;
    }
    if (n == 0) return 0;
    static const int shift = 19;
    uint32_t histogram[1 << 12] = {0};
    for (size_t i = 0; i < count; i++) {
        histogram[order_key(values[i]) >> shift]++;
    }
    size_t above = 0;
    uint32_t bucket = (1u << 12) - 1;
    while (above + histogram[bucket] < n) above += histogram[bucket--];
    // The bucket's values, to find its (n − above)-th largest exactly.
    size_t members = histogram[bucket], need = n - above, m = 0, out = 0;
    float *inBucket = (float *)malloc(members * sizeof(float));
    if (inBucket == NULL) return 0;
    for (size_t i = 0; i < count; i++) {
        if (order_key(values[i]) >> shift == bucket) inBucket[m++] = values[i];
    }
    float cut = sparsedb_nth_largest(inBucket, members, need - 1);
    size_t strictly = 0;
    for (size_t i = 0; i < members; i++) strictly += inBucket[i] > cut;
    free(inBucket);
    size_t ties = need - strictly;
    for (size_t i = 0; i < count; i++) {
        uint32_t b = order_key(values[i]) >> shift;
        if (b > bucket || (b == bucket && values[i] > cut)) chosen[out++] = (uint32_t)i;
        else if (b == bucket && values[i] == cut && ties > 0) {
            chosen[out++] = (uint32_t)i;
            ties--;
        }
    }
    return out;
}
