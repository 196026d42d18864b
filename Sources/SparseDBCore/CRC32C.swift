import CSparseDBKernels

/// CRC-32C (Castagnoli), the checksum of every record SparseDB writes (format-spec.md §1).
///
/// Chosen over CRC-32 (zlib) for its better error detection on short messages and because x86
/// has an instruction for it: search checks the checksum of every block and row it reads.
/// `checksum(b, seed: checksum(a))` is the checksum of `a ‖ b`.
package enum CRC32C {
    @inline(__always)
    package static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return sparsedb_crc32c(seed, base, bytes.count)
    }

    package static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    /// Whether the CPU's crc32 instruction is in use (for `sparsedb doctor`).
    package static var isHardwareAccelerated: Bool { sparsedb_crc32c_is_hardware() != 0 }
}
