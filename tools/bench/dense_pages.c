// Stop 19's harness (BENCHMARKS.md, "Stop 19: single dense queries"): the engine's dense scan
// kernel (sparsedb_dense_scores, Sources/CSparseDBKernels/flat_scan.c, linked in) over N rows
// of d floats in 256-row chunks, with the rows in
//   chunks — one malloc per chunk (the decoded-row cache before stop 19),
//   small  — one buffer on 4 KiB pages (MADV_NOHUGEPAGE),
//   huge   — one buffer on 2 MiB transparent huge pages (MADV_HUGEPAGE),
// and, as kernel k4, the variant that reads four adjacent rows sharing each query load. Prints
// the best and mean thread CPU time of the passes. (The software-prefetch and eight-row
// variants that BENCHMARKS.md also reports were measured with this file as of commit 6423516.)
//
//     K=Sources/CSparseDBKernels
//     gcc -O2 -I$K -I$K/include -o /tmp/dense_pages tools/bench/dense_pages.c $K/flat_scan.c $K/cpu_features.c -lm
//     taskset -c 1 /tmp/dense_pages ROWS DIMS chunks|small|huge [PASSES [k1|k4]]
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "CSparseDBKernels.h"

static double cpu_ms(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}

// The engine's kernel, as a scan uses it.
static void k1(const float *rows, size_t count, size_t stride, const float *query, size_t dimensions, float *scores) {
    (void)sparsedb_dense_scores(rows, count, stride, query, dimensions, scores);
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


int main(int argc, char **argv) {
    size_t n = atol(argv[1]), d = atol(argv[2]); const char *mode = argv[3]; int passes = argc > 4 ? atoi(argv[4]) : 20;
    const char *kern = argc > 5 ? argv[5] : "k1";
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
            if (!strcmp(kern, "k4")) k4(ptr[c], m, d, q, d, scores); else k1(ptr[c], m, d, q, d, scores);
            sink += scores[0];
        }
        t = cpu_ms() - t; if (t < best) best = t; sum += t;
    }
    FILE *f = fopen("/proc/self/smaps_rollup", "r"); char line[256]; long huge = 0;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "AnonHugePages:", 14)) huge = atol(line + 14);
    printf("n=%zu d=%zu %-7s %-5s best %.3f ms mean %.3f ms  %.2f GB/s  hugeKB=%ld\n", n, d, mode, kern, best, sum / passes, bytes / best / 1e6, huge);
    return 0;
}
