// Stop 19's harness (BENCHMARKS.md, "Stop 19: single dense queries"): the dense scan kernel of
// Sources/CSparseDBKernels/flat_scan.c over N rows of d floats in 256-row chunks, with the rows in
//   chunks — one malloc per chunk (the decoded-row cache before stop 19),
//   small  — one buffer on 4 KiB pages (MADV_NOHUGEPAGE),
//   huge   — one buffer on 2 MiB transparent huge pages (MADV_HUGEPAGE),
// and kernel variants: k1 (flat_scan.c's), k1pf (k1 with a software prefetch PF bytes ahead),
// k4 (four adjacent rows sharing each query load), k8 (eight rows one after another sharing one
// horizontal reduction). Prints the best and mean thread CPU time of the passes.
//
//     gcc -O2 -o /tmp/dense_pages tools/bench/dense_pages.c
//     taskset -c 1 /tmp/dense_pages ROWS DIMS chunks|small|huge [PASSES [k1|k1pf|k4|k8 [PF]]]
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

static double cpu_ms(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}

__attribute__((target("avx2,fma"))) static void k1(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores) {
    const size_t wide = dimensions & ~(size_t)7;
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * stride;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 32 <= wide; j += 32) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(query + j), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), _mm256_loadu_ps(query + j + 8), b);
            c = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 16), _mm256_loadu_ps(query + j + 16), c);
            d = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 24), _mm256_loadu_ps(query + j + 24), d);
        }
        for (; j < wide; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(query + j), a);
        __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float sum = _mm_cvtss_f32(h);
        for (; j < dimensions; j++) sum += x[j] * query[j];
        scores[r] = sum;
    }
}

// k1 with a software prefetch PF bytes ahead (one per 64-byte line).
static size_t PF = 0;
__attribute__((target("avx2,fma"))) static void k1pf(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores) {
    const size_t wide = dimensions & ~(size_t)7;
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * stride;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
        size_t j = 0;
        for (; j + 32 <= wide; j += 32) {
            _mm_prefetch((const char*)(x + j) + PF, _MM_HINT_T0);
            _mm_prefetch((const char*)(x + j) + PF + 64, _MM_HINT_T0);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(query + j), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), _mm256_loadu_ps(query + j + 8), b);
            c = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 16), _mm256_loadu_ps(query + j + 16), c);
            d = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 24), _mm256_loadu_ps(query + j + 24), d);
        }
        __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        scores[r] = _mm_cvtss_f32(h);
    }
}


// Four adjacent rows at a time, two accumulators each; one shared horizontal reduction.
__attribute__((target("avx2,fma"))) static void k4(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores) {
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const float *x0 = rows + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
        __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        for (size_t j = 0; j < dimensions; j += 16) {
            __m256 q0 = _mm256_loadu_ps(query + j), q1 = _mm256_loadu_ps(query + j + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + j), q0, a0); b0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + j + 8), q1, b0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + j), q0, a1); b1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + j + 8), q1, b1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + j), q0, a2); b2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + j + 8), q1, b2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + j), q0, a3); b3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + j + 8), q1, b3);
        }
        __m256 s0 = _mm256_add_ps(a0, b0), s1 = _mm256_add_ps(a1, b1), s2 = _mm256_add_ps(a2, b2), s3 = _mm256_add_ps(a3, b3);
        __m256 h01 = _mm256_hadd_ps(s0, s1), h23 = _mm256_hadd_ps(s2, s3);
        __m256 h = _mm256_hadd_ps(h01, h23);  // [r0 r1 r2 r3 | r0 r1 r2 r3] halves
        __m128 out = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        _mm_storeu_ps(scores + r, out);
    }
    if (r < count) k1(rows + r * stride, count - r, stride, query, dimensions, scores + r);
}


__attribute__((target("avx2"), always_inline)) static inline __m256 sum_lanes_of_8(const __m256 v[8]) {
    __m256 a = _mm256_hadd_ps(v[0], v[1]), b = _mm256_hadd_ps(v[2], v[3]);
    __m256 c = _mm256_hadd_ps(v[4], v[5]), d = _mm256_hadd_ps(v[6], v[7]);
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 low = _mm256_permute2f128_ps(ab, cd, 0x20), high = _mm256_permute2f128_ps(ab, cd, 0x31);
    return _mm256_add_ps(low, high);
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 row_sum(const float *x, const float *query, size_t wide) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 32 <= wide; j += 32) {
        a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(query + j), a);
        b = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), _mm256_loadu_ps(query + j + 8), b);
        c = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 16), _mm256_loadu_ps(query + j + 16), c);
        d = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 24), _mm256_loadu_ps(query + j + 24), d);
    }
    for (; j < wide; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(query + j), a);
    return _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
}
// Rows read one after another, front to back (one stream); eight rows share one reduction.
__attribute__((target("avx2,fma"))) static void k8(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores) {
    const size_t wide = dimensions & ~(size_t)7;
    size_t r = 0;
    for (; r + 8 <= count; r += 8) {
        __m256 s[8];
        for (int i = 0; i < 8; i++) s[i] = row_sum(rows + (r + i) * stride, query, wide);
        _mm256_storeu_ps(scores + r, sum_lanes_of_8(s));
    }
    if (r < count) k1(rows + r * stride, count - r, stride, query, dimensions, scores + r);
}

int main(int argc, char **argv) {
    size_t n = atol(argv[1]), d = atol(argv[2]); const char *mode = argv[3]; int passes = argc > 4 ? atoi(argv[4]) : 20;
    const char *kern = argc > 5 ? argv[5] : "k1"; if (argc > 6) PF = atol(argv[6]);
    size_t chunk = 256, nchunks = (n + chunk - 1) / chunk;
    float **ptr = malloc(nchunks * sizeof *ptr);
    size_t bytes = n * d * 4;
    if (!strcmp(mode, "chunks")) {
        for (size_t c = 0; c < nchunks; c++) ptr[c] = (float*)((char*)malloc(chunk * d * 4 + 32) + 32);
    } else {
        size_t al = 2 << 20, sz = (bytes + al - 1) / al * al;
        float *base = aligned_alloc(al, sz);
        madvise(base, sz, !strcmp(mode, "huge") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        for (size_t c = 0; c < nchunks; c++) ptr[c] = base + c * chunk * d;
    }
    for (size_t c = 0; c < nchunks; c++) for (size_t i = 0; i < chunk * d; i++) ptr[c][i] = (float)((c * 31 + i) % 17) - 8;
    float *q = malloc(d * 4); for (size_t i = 0; i < d; i++) q[i] = 0.01f * (i % 13);
    float scores[256]; double best = 1e9, sum = 0; volatile float sink = 0;
    for (int p = 0; p < passes; p++) {
        double t = cpu_ms();
        for (size_t c = 0; c < nchunks; c++) {
            size_t m = c + 1 < nchunks ? chunk : n - c * chunk;
            if (!strcmp(kern, "k8")) k8(ptr[c], m, d, q, d, scores); else if (!strcmp(kern, "k4")) k4(ptr[c], m, d, q, d, scores); else if (!strcmp(kern, "k1")) k1(ptr[c], m, d, q, d, scores); else k1pf(ptr[c], m, d, q, d, scores);
            sink += scores[0];
        }
        t = cpu_ms() - t; if (t < best) best = t; sum += t;
    }
    FILE *f = fopen("/proc/self/smaps_rollup", "r"); char line[256]; long huge = 0;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "AnonHugePages:", 14)) huge = atol(line + 14);
    printf("n=%zu d=%zu %-7s %-5s pf=%zu best %.3f ms mean %.3f ms  %.2f GB/s  hugeKB=%ld\n", n, d, mode, kern, PF, best, sum / passes, bytes / best / 1e6, huge);
    return 0;
}
