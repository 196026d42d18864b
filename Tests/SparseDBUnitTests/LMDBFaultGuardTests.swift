import Foundation
import SparseDBCore
import SparseDBStorage
import SparseDBTestSupport
import Testing

/// LMDB trusts its pages: a node offset that points past the end of the data file makes it read
/// unmapped file pages (SIGBUS). The fault guard (Sources/CLMDBGuard) must turn that into a
/// `.corrupt` error, in read and in write transactions, and leave the environment usable.
@Suite struct LMDBFaultGuardTests {
    static let pageSize = 4096

    @Test func damagedNodeOffsetsAreTypedErrorsNotCrashes() throws {
        try withTemporaryDirectory { dir in
            let keys = (0..<3_000).map { Self.key($0) }
            do {
                let env = try LMDBEnvironment(path: dir, mapSize: 64 << 20, readOnly: false, maxReaders: 8)
                defer { env.close() }
                try env.write { txn in
                    let table = TableRef(name: "t", dbi: try txn.openTable("t", create: true))
                    for key in keys { try txn.put([UInt8](repeating: 7, count: 40), forKey: key, in: table) }
                    _ = try txn.openTable("u", create: true)
                }
            }
            // The leaf page with the highest page number: written last, so within a few pages of
            // the end of the file. Every node offset of it is pointed 65,528 bytes ahead.
            let file = dir + "/data.mdb"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            let pages = bytes.count / Self.pageSize
            let leaf = try #require((2..<pages).reversed().first { Self.u16(bytes, $0 * Self.pageSize + 10) & 0x02 != 0 })
            let base = leaf * Self.pageSize
            #expect(base + 65_528 >= bytes.count, "the damaged offsets must point past the end of the file (leaf page \(leaf) of \(pages))")
            let nodes = (Int(Self.u16(bytes, base + 12)) - 16) / 2
            try #require(nodes > 2)
            // The page's first key (node header: lo, hi, flags, key size; then the key).
            let first = Int(Self.u16(bytes, base + 16))
            let keySize = Int(Self.u16(bytes, base + first + 6))
            let keyOnPage = Array(bytes[(base + first + 8)..<(base + first + 8 + keySize)])
            try #require(keys.contains(keyOnPage))
            for node in 0..<nodes {
                bytes[base + 16 + 2 * node] = 0xF8
                bytes[base + 16 + 2 * node + 1] = 0xFF
            }
            try Data(bytes).write(to: URL(fileURLWithPath: file))

            let env = try LMDBEnvironment(path: dir, mapSize: 64 << 20, readOnly: false, maxReaders: 8)
            defer { env.close() }
            func expectFault(_ what: String, _ body: () throws -> Void) {
                let error = #expect(throws: SparseDBError.self, "\(what)") { try body() }
                #expect(error?.code == .corrupt, "\(what): \(String(describing: error))")
                #expect(error?.message.contains("LMDB stopped on a damaged page (SIGBUS)") == true, "\(what): \(String(describing: error))")
            }
            let t = { (txn: borrowing Transaction) throws -> TableRef in TableRef(name: "t", dbi: try txn.openTable("t", create: false)) }
            // Reads: a key on the damaged page, and a scan through it.
            expectFault("reading a key on the damaged page") { _ = try env.read { txn in try txn.value(keyOnPage, in: try t(txn)) } }
            expectFault("scanning the table") { try env.read { txn in try txn.scan(prefix: [], in: try t(txn)) { _, _ in true } } }
            // A write that lands on the damaged page: aborted, and the writer lock released.
            expectFault("writing onto the damaged page") { try env.write { txn in try txn.put([1], forKey: keyOnPage, in: try t(txn)) } }
            // Keys on undamaged pages still read, and the environment still takes writes.
            #expect(try env.read { txn in try txn.value(keys[0], in: try t(txn)) } == [UInt8](repeating: 7, count: 40))
            try env.write { txn in try txn.put([9], forKey: [1], in: TableRef(name: "u", dbi: try txn.openTable("u", create: false))) }
            #expect(try env.read { txn in try txn.value([1], in: TableRef(name: "u", dbi: try txn.openTable("u", create: false))) } == [9])
        }
    }

    static func key(_ i: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(i).bigEndian) { Array($0) } }
    static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
}
