#ifndef SPARSEDB_CPU_FEATURES_H
#define SPARSEDB_CPU_FEATURES_H

// The CPU features the kernels choose their code by (private to this target).
enum {
    SPARSEDB_CPU_SSE42 = 1 << 0,
    SPARSEDB_CPU_AVX2 = 1 << 1,
    SPARSEDB_CPU_FMA = 1 << 2,
    SPARSEDB_CPU_F16C = 1 << 3,
};

/// A bit set of SPARSEDB_CPU_*: what this CPU has (0 off x86-64). Computed once per process.
int sparsedb_cpu_features(void);

/// Whether this CPU has every feature in `needed` (a bit set of SPARSEDB_CPU_*).
static inline int cpu_has(int needed) { return (sparsedb_cpu_features() & needed) == needed; }

#endif
