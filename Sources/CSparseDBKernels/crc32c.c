// CRC-32C for checksums on every stored record. Swift cannot emit the SSE 4.2 crc32 instruction,
// which is about 20x faster than a byte-wise table; search checks the checksum of every block and
// row it reads, so this sits on the query path.
#include "cpu_features.h"
#include "CSparseDBKernels.h"

#include <string.h>

static uint32_t table[8][256];
static int table_ready;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
    }
    table_ready = 1;
}

// Slicing-by-8: the fallback for CPUs without SSE 4.2.
static uint32_t crc32c_portable(uint32_t crc, const unsigned char *p, size_t n) {
    if (!table_ready) build_table();  // idempotent; a race only rebuilds identical values
    crc = ~crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = table[7][word & 0xFF] ^ table[6][(word >> 8) & 0xFF] ^ table[5][(word >> 16) & 0xFF] ^
              table[4][(word >> 24) & 0xFF] ^ table[3][(word >> 32) & 0xFF] ^ table[2][(word >> 40) & 0xFF] ^
              table[1][(word >> 48) & 0xFF] ^ table[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

#endif

uint32_t sparsedb_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    if (cpu_has(SPARSEDB_CPU_SSE42)) return crc32c_sse42(crc, (const unsigned char *)data, length);
#endif
    return crc32c_portable(crc, (const unsigned char *)data, length);
}

int sparsedb_crc32c_is_hardware(void) {
#if defined(__x86_64__)
    return cpu_has(SPARSEDB_CPU_SSE42);
#else
    return 0;
#endif
}
