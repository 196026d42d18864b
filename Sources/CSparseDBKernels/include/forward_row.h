#ifndef CSPARSEDB_FORWARD_ROW_H
#define CSPARSEDB_FORWARD_ROW_H

#include <stddef.h>
#include <stdint.h>

/// The exact dot product of a query (`qn` strictly increasing dimensions `qd`, weights `qw`) with
/// a forward row of `count` entries (format-spec.md §8: `gap_bytes` bytes of varint dimension
/// gaps at `gaps`, `count` little-endian f32 weights at `weights`), merging while decoding: each
/// product and each sum is rounded to double separately (no fused multiply–add), in increasing
/// dimension order, so the value is bit for bit the one `Records.dot`'s Swift loop computed.
/// Stops once every query dimension is passed (the rest of the row is not decoded). Writes the
/// sum to `out` and returns 0, or returns -1 when a gap runs past `gap_bytes` or overflows 32 bits.
int sparsedb_forward_row_dot(
    const uint8_t *gaps, size_t gap_bytes, const uint8_t *weights, size_t count, const uint32_t *qd, const float *qw, size_t qn,
    double *out);

#endif
