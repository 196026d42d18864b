// The candidate pass of a MaxScore window (SparseDBSearch/Traversal.swift): which documents
// the essential lists touched can still reach the threshold, given each 64-document word's
// bound on what the non-essential lists can add.

#include "CSparseDBKernels.h"
#include "cpu_features.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Bit i set when pairs[2i] + rest < bar is false, for i < 64: exactly the documents Swift's
// `CandidateCollector.isPruned(upper + rest)` keeps (a NaN sum is kept, as there).
static inline __attribute__((always_inline)) uint64_t reach_scalar(const float *pairs, float rest, float bar) {
    uint64_t m = 0;
    for (int i = 0; i < 64; i++) m |= (uint64_t)!(pairs[2 * i] + rest < bar) << i;
    return m;
}

#if defined(__x86_64__)
__attribute__((target("avx2"), always_inline)) static inline uint64_t reach_avx2(const float *pairs, float rest, float bar) {
    const __m256 r = _mm256_set1_ps(rest), b = _mm256_set1_ps(bar);
    uint64_t m = 0;
    for (int i = 0; i < 64; i += 8) {
        __m256 a = _mm256_loadu_ps(pairs + 2 * i);      // u0 l0 u1 l1 | u2 l2 u3 l3
        __m256 c = _mm256_loadu_ps(pairs + 2 * i + 8);  // u4 l4 u5 l5 | u6 l6 u7 l7
        __m256 u = _mm256_shuffle_ps(a, c, 0x88);       // u0 u1 u4 u5 | u2 u3 u6 u7
        // 64-bit lanes (u0u1)(u4u5)(u2u3)(u6u7) → (u0u1)(u2u3)(u4u5)(u6u7)
        u = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(u), 0xD8));
        __m256 below = _mm256_cmp_ps(_mm256_add_ps(u, r), b, _CMP_LT_OQ);  // false on NaN
        m |= (uint64_t)(~(unsigned)_mm256_movemask_ps(below) & 0xFFu) << i;
    }
    return m;
}
#endif

// The pass itself, with REACH the word's mask function (a macro so that each CPU's version is
// compiled whole for that CPU: an AVX2 function cannot be inlined into a generic one).
#define WINDOW_CANDIDATES_BODY(REACH)                                              \
    size_t n = 0;                                                                  \
    for (size_t w = 0; w < words; w++) {                                           \
        uint64_t t = touched[w];                                                   \
        if (t == 0) continue;                                                      \
        touched[w] = 0;                                                            \
        float *pairs = bounds + 128 * w;                                           \
        uint64_t m = t & admitted[w] & REACH(pairs, rest[w], bar);                 \
        while (m != 0) {                                                           \
            unsigned i = (unsigned)__builtin_ctzll(m);                             \
            m &= m - 1;                                                            \
            size_t slot = 64 * w + i;                                              \
            docs[n] = base + (uint32_t)slot;                                       \
            upper[n] = pairs[2 * i];                                               \
            lower[n] = pairs[2 * i + 1];                                           \
            slots[slot] = (int32_t)n;                                              \
            n++;                                                                   \
        }                                                                          \
        /* Every sum of the word back to zero for the next window. */              \
        memset(pairs, 0, 128 * sizeof(float));                                     \
    }                                                                              \
    return n;

#define WINDOW_CANDIDATES_PARAMETERS                                                                                    \
    float *bounds, uint64_t *touched, size_t words, const uint64_t *admitted, const float *rest, float bar, uint32_t base, \
        uint32_t *docs, float *upper, float *lower, int32_t *slots

static size_t window_candidates_scalar(WINDOW_CANDIDATES_PARAMETERS) { WINDOW_CANDIDATES_BODY(reach_scalar) }

#if defined(__x86_64__)
__attribute__((target("avx2"))) static size_t window_candidates_avx2(WINDOW_CANDIDATES_PARAMETERS) { WINDOW_CANDIDATES_BODY(reach_avx2) }
#endif

size_t sparsedb_maxscore_window_candidates(
    float *bounds, uint64_t *touched, size_t words, const uint64_t *admitted, const float *rest, float bar, uint32_t base,
    uint32_t *docs, float *upper, float *lower, int32_t *slots) {
#if defined(__x86_64__)
    if (sparsedb_cpu_features() & SPARSEDB_CPU_AVX2)
        return window_candidates_avx2(bounds, touched, words, admitted, rest, bar, base, docs, upper, lower, slots);
#endif
    return window_candidates_scalar(bounds, touched, words, admitted, rest, bar, base, docs, upper, lower, slots);
}

size_t sparsedb_maxscore_keep_reachable(
    uint32_t *docs, float *upper, float *lower, int32_t *slots, size_t count, const float *rest, float bar, uint32_t base,
    int32_t spare) {
    // Branch-free: every candidate is copied to `kept` (never past its own place) and `kept`
    // moves on only for those that stay; about half of them go, in no pattern a branch
    // predictor could learn.
    size_t kept = 0;
    for (size_t c = 0; c < count; c++) {
        uint32_t d = docs[c];
        uint32_t slot = d - base;
        float u = upper[c];
        int keep = !(u + rest[slot >> 6] < bar);
        docs[kept] = d;
        upper[kept] = u;
        lower[kept] = lower[c];
        slots[slot] = keep ? (int32_t)kept : spare;
        kept += (size_t)keep;
    }
    return kept;
}
