// Exact rescoring reads one forward row per candidate and merges it with the query. Swift's loop
// (a bounds-checked varint reader returning optionals, a bounds-checked weight load per match)
// took about 47 instructions per row entry: with ~290 entries per SPLADE row and ~10 candidates,
// a third of a small collection's query. This loop does the same arithmetic in the same order.
#include "forward_row.h"

#include <string.h>

// Products and sums are rounded separately, as Swift computes `sum += Double(w) * Double(q)`:
// a contracted (fused) multiply–add would change the last bit of some scores.
#pragma clang fp contract(off)

static inline float load_f32le(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    bits = __builtin_bswap32(bits);
#endif
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int sparsedb_forward_row_dot(
    const uint8_t *gaps, size_t gap_bytes, const uint8_t *weights, size_t count, const uint32_t *qd, const float *qw, size_t qn,
    double *out) {
    double sum = 0;
    if (qn == 0 || count == 0) {
        *out = sum;
        return 0;
    }
    const uint8_t *p = gaps;
    const uint8_t *end = gaps + gap_bytes;
    size_t j = 0;
    uint32_t next = qd[0];  // the first query dimension not yet passed
    uint32_t dim = 0;
    for (size_t i = 0; i < count; i++) {
        if (p == end) return -1;
        uint32_t b = *p++;
        uint32_t gap = b;
        if (b >= 0x80) {
            gap = b & 0x7F;
            unsigned shift = 7;
            for (;;) {
                if (p == end) return -1;
                b = *p++;
                if (shift == 28 && b > 0x0F) return -1;  // would overflow 32 bits
                gap |= (b & 0x7F) << shift;
                if (b < 0x80) break;
                shift += 7;
            }
        }
        dim += gap;  // wraps as Swift's &+; the first gap is the first dimension (dim starts at 0)
        if (dim < next) continue;
        while (qd[j] < dim) {
            if (++j == qn) goto done;
        }
        next = qd[j];
        if (next == dim) {
            sum += (double)load_f32le(weights + 4 * i) * (double)qw[j];
            if (++j == qn) goto done;
            next = qd[j];
        }
    }
done:
    *out = sum;
    return 0;
}
