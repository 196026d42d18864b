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

/// Encoding 1 ("packed", format-spec.md §8): `payload` = the bytes after the row's count (gap
/// parameter u8, exponent parameter u8, largest sign-and-exponent u16le, first dimension varint,
/// bit stream). Decodes `count` entries into `dims` and `weights` (each with room for `count`);
/// returns 0, or -1 when the payload is malformed: a field past its end, a parameter or a value
/// out of range, a dimension past 2^32 − 1, or bytes or non-zero bits after the last entry.
/// Dimensions come out strictly increasing; they are not checked against a field's size.
int sparsedb_forward_row_unpack(const uint8_t *payload, size_t length, size_t count, uint32_t *dims, float *weights);

/// As `sparsedb_forward_row_dot`, for a packed row's payload (`count` entries): the same
/// arithmetic in the same order, so the same bits as for the same row in encoding 0. Stops once
/// every query dimension is passed; -1 when the part it decodes is malformed.
int sparsedb_forward_row_packed_dot(
    const uint8_t *payload, size_t length, size_t count, const uint32_t *qd, const float *qw, size_t qn, double *out);

/// Writes the packed payload of a row of `count` ≥ 1 entries (`dims` strictly increasing,
/// `weights` non-zero) into `out`; `scratch` has room for 2 · `count` values. Returns the bytes
/// written, or 0 when they would exceed `capacity` (16 + 11 · `count` always suffices).
size_t sparsedb_forward_row_pack(const uint32_t *dims, const float *weights, size_t count, uint32_t *scratch, uint8_t *out, size_t capacity);

#endif
