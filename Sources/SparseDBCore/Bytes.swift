// These helpers are `public` with `@inlinable` bodies, not `package`: Swift 6.3 does not inline
// `@inlinable package` code across modules, and the record decoders call them per byte. This
// target is not a product, so nothing outside this package can import them.

/// Append-only byte builder for on-disk records: fixed little-endian integers, big-endian
/// key integers, and LEB128 varints (see format-spec.md §1).
public struct ByteWriter {
    public var bytes: [UInt8] = []

    @inlinable public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inlinable public mutating func u16le(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func u32le(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func u32be(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func u64le(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func u64be(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func u16be(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    @inlinable public mutating func f32le(_ v: Float) { u32le(v.bitPattern) }
    @inlinable public mutating func f64le(_ v: Double) { u64le(v.bitPattern) }
    /// Overwrites 4 bytes at `offset` with `v` little-endian (a checksum filled in last).
    @inlinable public mutating func patchU32le(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { bytes.replaceSubrange(offset..<(offset + 4), with: $0) }
    }
    @inlinable public mutating func varint(_ value: UInt32) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    @inlinable public mutating func append(_ other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }
}

/// Bounds-checked reader over stored bytes. Every read returns `nil` past the end instead of
/// trapping, so a truncated or hostile record becomes a typed error, never a crash.
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    public var offset: Int = 0

    @inlinable public init(_ base: UnsafeRawBufferPointer) { self.base = base }

    @inlinable public var remaining: Int { base.count - offset }
    @inlinable public var isAtEnd: Bool { offset >= base.count }

    @inlinable public mutating func u8() -> UInt8? {
        guard offset < base.count else { return nil }
        defer { offset += 1 }
        return base[offset]
    }
    @inlinable public mutating func u16le() -> UInt16? { fixed(UInt16.self).map { UInt16(littleEndian: $0) } }
    @inlinable public mutating func u32le() -> UInt32? { fixed(UInt32.self).map { UInt32(littleEndian: $0) } }
    @inlinable public mutating func u32be() -> UInt32? { fixed(UInt32.self).map { UInt32(bigEndian: $0) } }
    @inlinable public mutating func f32le() -> Float? { u32le().map { Float(bitPattern: $0) } }
    @inlinable public mutating func u64le() -> UInt64? { fixed(UInt64.self).map { UInt64(littleEndian: $0) } }
    @inlinable public mutating func u64be() -> UInt64? { fixed(UInt64.self).map { UInt64(bigEndian: $0) } }
    @inlinable public mutating func u16be() -> UInt16? { fixed(UInt16.self).map { UInt16(bigEndian: $0) } }
    @inlinable public mutating func f64le() -> Double? { u64le().map { Double(bitPattern: $0) } }
    /// The rest of the bytes.
    @inlinable public mutating func rest() -> UnsafeRawBufferPointer {
        defer { offset = base.count }
        return UnsafeRawBufferPointer(rebasing: base[min(offset, base.count)...])
    }

    @inlinable @inline(__always) public mutating func varint() -> UInt32? {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while offset < base.count {
            let b = base[offset]
            offset += 1
            if shift == 28 && b > 0x0F { return nil }  // would overflow 32 bits
            result |= UInt32(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    @inlinable public mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, count <= remaining else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
    }

    @inlinable mutating func fixed<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        defer { offset += size }
        return base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }
}

extension Array where Element == UInt8 {
    /// Big-endian key built from 32-bit parts, so that keys sort numerically in LMDB's byte order.
    @inlinable public init(bigEndianKey parts: UInt32...) {
        self.init()
        reserveCapacity(parts.count * 4)
        for p in parts { Swift.withUnsafeBytes(of: p.bigEndian) { append(contentsOf: $0) } }
    }
}
