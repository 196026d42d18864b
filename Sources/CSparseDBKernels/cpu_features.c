#include "cpu_features.h"

int sparsedb_cpu_features(void) {
#if defined(__x86_64__)
    // Threads that race here all compute the same value; relaxed atomics make that race defined.
    static int cached = -1;
    int features = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (features < 0) {
        __builtin_cpu_init();
        features = (__builtin_cpu_supports("sse4.2") ? SPARSEDB_CPU_SSE42 : 0) |
                   (__builtin_cpu_supports("avx2") ? SPARSEDB_CPU_AVX2 : 0) |
                   (__builtin_cpu_supports("fma") ? SPARSEDB_CPU_FMA : 0) |
                   (__builtin_cpu_supports("f16c") ? SPARSEDB_CPU_F16C : 0);
        __atomic_store_n(&cached, features, __ATOMIC_RELAXED);
    }
    return features;
#else
    return 0;
#endif
}
