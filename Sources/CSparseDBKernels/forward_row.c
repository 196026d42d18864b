// Exact rescoring reads one forward row per candidate and merges it with the query. Swift's loop
// (a bounds-checked varint reader returning optionals, a bounds-checked weight load per match)
// took about 47 instructions per row entry: with ~290 entries per SPLADE row and ~10 candidates,
// a third of a small collection's query. This loop does the same arithmetic in the same order.
#include "forward_row.h"

#include <string.h>

// Products and sums are rounded separately, as Swift computes `sum += Double(w) * Double(q)`:
// a contracted (fused) multiply–add would change the last bit of some scores.
#pragma clang fp contract(off)

static inline float from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float load_f32le(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    bits = __builtin_bswap32(bits);
#endif
    return from_bits(bits);
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

// ---- Encoding 1: packed (format-spec.md §8) ----------------------------------------------------
//
// A SPLADE row's f32 weights are most of its bytes, and their low 23 bits (the mantissa) are as
// good as random: only the sign-and-exponent part (9 bits, of which a row uses a handful of
// values) and the dimension gaps compress. So each entry is Rice-coded gap, Rice-coded distance
// of its sign-and-exponent below the row's largest, and the raw mantissa: about 35 bits against
// the 43 of a varint gap and an f32 (measured on the 1 M corpus, BENCHMARKS.md). The bits are
// packed least significant first; every reader below checks every position against the end.

static inline uint64_t load_u64le(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

typedef struct {
    const uint8_t *bytes;
    size_t length;  // bytes in the stream
    uint64_t pos;   // next bit
} bit_reader;

// At least 57 bits from `pos` (bits past the end read as 0).
static inline uint64_t peek(const bit_reader *r) {
    size_t b = (size_t)(r->pos >> 3);
    uint64_t w = 0;
    if (b + 8 <= r->length) {
        w = load_u64le(r->bytes + b);
    } else {
        for (size_t i = 0; b + i < r->length; i++) w |= (uint64_t)r->bytes[b + i] << (8 * i);
    }
    return w >> (r->pos & 7);
}

// `n` ≤ 32 bits; -1 when they run past the end.
static inline int read_bits(bit_reader *r, unsigned n, uint32_t *out) {
    uint64_t w = peek(r);
    *out = n == 0 ? 0 : (uint32_t)(w & ((n == 32) ? 0xFFFFFFFFull : ((1ull << n) - 1)));
    r->pos += n;
    return r->pos <= 8 * (uint64_t)r->length ? 0 : -1;
}

// A Rice code with parameter k: q zero bits, a one bit, then k low bits; value = q·2^k + low.
// -1 past the end or when the value would exceed `limit`.
static inline int read_rice(bit_reader *r, unsigned k, uint64_t limit, uint64_t *out) {
    uint64_t q = 0;
    uint64_t qlimit = limit >> k;
    uint64_t end = 8 * (uint64_t)r->length;
    for (;;) {
        if (r->pos >= end) return -1;
        uint64_t w = peek(r);
        if (w == 0) {
            uint64_t run = 64 - (r->pos & 7);
            q += run;
            r->pos += run;
            if (q > qlimit) return -1;
            continue;
        }
        unsigned zeros = (unsigned)__builtin_ctzll(w);
        q += zeros;
        r->pos += zeros + 1;
        if (q > qlimit || r->pos > end) return -1;
        break;
    }
    uint32_t low;
    if (read_bits(r, k, &low) != 0) return -1;
    uint64_t v = (q << k) | low;
    if (v > limit) return -1;
    *out = v;
    return 0;
}

// The packed header: gap parameter, exponent parameter, largest sign-and-exponent, first
// dimension (varint); then the stream. -1 when malformed.
typedef struct {
    unsigned gap_k, exp_k;
    uint32_t top, first;
    bit_reader stream;
} packed_row;

static int open_packed(const uint8_t *payload, size_t length, size_t count, packed_row *row) {
    if (count == 0) return length == 0 ? 0 : -1;
    if (length < 5) return -1;
    row->gap_k = payload[0];
    row->exp_k = payload[1];
    row->top = (uint32_t)payload[2] | (uint32_t)payload[3] << 8;
    if (row->gap_k > 31 || row->exp_k > 9 || row->top > 511) return -1;
    const uint8_t *p = payload + 4, *end = payload + length;
    uint32_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (p == end) return -1;
        uint32_t b = *p++;
        if (shift == 28 && b > 0x0F) return -1;
        v |= (b & 0x7F) << shift;
        if (b < 0x80) break;
    }
    row->first = v;
    row->stream.bytes = p;
    row->stream.length = (size_t)(end - p);
    row->stream.pos = 0;
    // Every entry takes at least 24 bits (the first) or 25 (the others).
    if (count > 1 && (uint64_t)(count - 1) * 25 + 24 > 8 * (uint64_t)row->stream.length) return -1;
    if (count == 1 && 24 > 8 * (uint64_t)row->stream.length) return -1;
    return 0;
}

// Entry i's dimension (from `*dim`, the previous one) and weight bits.
static inline int next_entry(packed_row *row, size_t i, uint32_t *dim, uint32_t *bits) {
    if (i == 0) {
        *dim = row->first;
    } else {
        uint64_t gap;
        if (read_rice(&row->stream, row->gap_k, 0xFFFFFFFEull, &gap) != 0) return -1;
        uint64_t d = (uint64_t)*dim + gap + 1;
        if (d > 0xFFFFFFFFull) return -1;
        *dim = (uint32_t)d;
    }
    uint64_t below;
    if (read_rice(&row->stream, row->exp_k, row->top, &below) != 0) return -1;
    uint32_t mantissa;
    if (read_bits(&row->stream, 23, &mantissa) != 0) return -1;
    *bits = (row->top - (uint32_t)below) << 23 | mantissa;
    return 0;
}

int sparsedb_forward_row_unpack(const uint8_t *payload, size_t length, size_t count, uint32_t *dims, float *weights) {
    packed_row row;
    if (open_packed(payload, length, count, &row) != 0) return -1;
    uint32_t dim = 0, bits;
    for (size_t i = 0; i < count; i++) {
        if (next_entry(&row, i, &dim, &bits) != 0) return -1;
        dims[i] = dim;
        weights[i] = from_bits(bits);
    }
    if (count == 0) return 0;
    // The stream ends in the byte of its last bit, and the padding bits are 0.
    uint64_t used = row.stream.pos;
    if ((used + 7) / 8 != row.stream.length) return -1;
    if (used % 8 != 0 && (row.stream.bytes[row.stream.length - 1] >> (used % 8)) != 0) return -1;
    return 0;
}

int sparsedb_forward_row_packed_dot(
    const uint8_t *payload, size_t length, size_t count, const uint32_t *qd, const float *qw, size_t qn, double *out) {
    double sum = 0;
    packed_row row;
    if (open_packed(payload, length, count, &row) != 0) return -1;
    if (qn == 0 || count == 0) {
        *out = sum;
        return 0;
    }
    size_t j = 0;
    uint32_t next = qd[0];
    uint32_t dim = 0, bits;
    for (size_t i = 0; i < count; i++) {
        if (next_entry(&row, i, &dim, &bits) != 0) return -1;
        if (dim < next) continue;
        while (qd[j] < dim) {
            if (++j == qn) goto done;
        }
        next = qd[j];
        if (next == dim) {
            sum += (double)from_bits(bits) * (double)qw[j];
            if (++j == qn) goto done;
            next = qd[j];
        }
    }
done:
    *out = sum;
    return 0;
}

typedef struct {
    uint8_t *bytes;
    size_t capacity;
    uint64_t acc;   // bits not yet written, least significant first
    unsigned held;  // how many
    size_t length;  // bytes written
    int overflow;
} bit_writer;

static inline void put_bits(bit_writer *w, uint64_t v, unsigned n) {  // n ≤ 32
    w->acc |= v << w->held;
    w->held += n;
    while (w->held >= 8) {
        if (w->length < w->capacity) w->bytes[w->length] = (uint8_t)w->acc; else w->overflow = 1;
        w->length++;
        w->acc >>= 8;
        w->held -= 8;
    }
}

static inline void put_rice(bit_writer *w, uint64_t v, unsigned k) {
    uint64_t q = v >> k;
    while (q >= 32) {
        put_bits(w, 0, 32);
        q -= 32;
    }
    put_bits(w, 1ull << q, (unsigned)q + 1);
    if (k) put_bits(w, v & ((1ull << k) - 1), k);
}

static uint64_t rice_cost(const uint32_t *values, size_t n, unsigned k) {
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) bits += ((uint64_t)values[i] >> k) + 1 + k;
    return bits;
}

// The k in [lo, hi] that codes `values` in the fewest bits (the smallest such k).
static unsigned best_rice(const uint32_t *values, size_t n, unsigned lo, unsigned hi) {
    unsigned best = lo;
    uint64_t cost = rice_cost(values, n, lo);
    for (unsigned k = lo + 1; k <= hi; k++) {
        uint64_t c = rice_cost(values, n, k);
        if (c < cost) {
            cost = c;
            best = k;
        }
    }
    return best;
}

size_t sparsedb_forward_row_pack(const uint32_t *dims, const float *weights, size_t count, uint32_t *scratch, uint8_t *out, size_t capacity) {
    if (count == 0) return 0;
    // scratch: count − 1 gap codes, then count exponent codes.
    uint32_t *gaps = scratch, *below = scratch + count;
    uint32_t top = 0;
    uint64_t gap_sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &weights[i], 4);
        if (bits >> 23 > top) top = bits >> 23;
        if (i > 0) {
            gaps[i - 1] = dims[i] - dims[i - 1] - 1;
            gap_sum += gaps[i - 1];
        }
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &weights[i], 4);
        below[i] = top - (bits >> 23);
    }
    // Rice's best parameter sits near log2 of the mean: try a few around it.
    unsigned gap_k = 0;
    if (count > 1) {
        uint64_t mean = gap_sum / (count - 1);
        unsigned k0 = mean ? 63 - (unsigned)__builtin_clzll(mean) : 0;
        gap_k = best_rice(gaps, count - 1, k0 > 3 ? k0 - 3 : 0, k0 + 2 > 31 ? 31 : k0 + 2);
    }
    unsigned exp_k = best_rice(below, count, 0, 9);

    bit_writer w = {out, capacity, 0, 0, 0, 0};
    uint8_t header[4] = {(uint8_t)gap_k, (uint8_t)exp_k, (uint8_t)(top & 0xFF), (uint8_t)(top >> 8)};
    for (int i = 0; i < 4; i++) put_bits(&w, header[i], 8);
    uint32_t first = dims[0];
    while (first >= 0x80) {
        put_bits(&w, (first & 0x7F) | 0x80, 8);
        first >>= 7;
    }
    put_bits(&w, first, 8);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &weights[i], 4);
        if (i > 0) put_rice(&w, gaps[i - 1], gap_k);
        put_rice(&w, below[i], exp_k);
        put_bits(&w, bits & 0x7FFFFF, 23);
    }
    if (w.held) put_bits(&w, 0, 8 - w.held);
    return w.overflow ? 0 : w.length;
}
