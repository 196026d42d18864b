/* Sequential read bandwidth: each of T threads sums its own float32 buffer (default 1 GiB
 * each, far larger than any cache) with 8 independent AVX2 accumulators, several passes;
 * prints the best pass as GB/s (10^9 bytes) over all threads, by wall time and by each thread's
 * CPU time (what a busy machine's waiting leaves out). Used by tools/bench/flat.py:
 *     cc -O3 -march=native -pthread -o membw membw.c && ./membw THREADS MIB PASSES */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t n_floats;
static int passes;
static pthread_barrier_t barrier;
static double best_pass[64];
static double best_cpu[64]; /* per thread: best pass in thread CPU time */
static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *run(void *arg) {
    int id = (int)(size_t)arg;
    float *buf = aligned_alloc(64, n_floats * 4);
    for (size_t i = 0; i < n_floats; i++) buf[i] = (float)(i & 1023) * 1e-3f;
    for (int p = 0; p < passes; p++) {
        pthread_barrier_wait(&barrier);
        double t0 = now(), c0 = cpu();
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < n_floats; i += 64)
            for (int j = 0; j < 8; j++) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(buf + i + 8 * j));
        for (int j = 1; j < 8; j++) a[0] = _mm256_add_ps(a[0], a[j]);
        float out[8];
        _mm256_storeu_ps(out, a[0]);
        sink += out[0];
        double c = cpu() - c0;
        if (best_cpu[id] == 0 || c < best_cpu[id]) best_cpu[id] = c;
        pthread_barrier_wait(&barrier);
        double t = now() - t0; /* the slowest thread ends the pass */
        if (id == 0 && (best_pass[p] == 0 || t < best_pass[p])) best_pass[p] = t;
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    passes = argc > 3 ? atoi(argv[3]) : 5;
    n_floats = mib * 1024 * 1024 / 4;
    pthread_barrier_init(&barrier, NULL, threads);
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, (void *)(size_t)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double best = 1e30;
    for (int p = 0; p < passes; p++) if (best_pass[p] > 0 && best_pass[p] < best) best = best_pass[p];
    double cpu_rate = 0; /* sum over threads of bytes per CPU second */
    for (int i = 0; i < threads; i++) cpu_rate += (double)n_floats * 4 / best_cpu[i] / 1e9;
    printf("{\"threads\": %d, \"mib_per_thread\": %zu, \"passes\": %d, \"best_s\": %.6f, \"gb_per_s\": %.3f, "
           "\"gb_per_cpu_s\": %.3f}\n", threads, mib, passes, best, threads * (double)n_floats * 4 / best / 1e9, cpu_rate);
    return 0;
}
