extension Collection {
    /// Checks every stored structure of this collection; returns the problems found.
    ///
    /// Checks: block checksums and decodability; every posting refers to a stored (live or
    /// deleted) document; term statistics match their blocks; the id map and the document table
    /// agree; every document has a forward row with a valid checksum; counts match the metadata.
    public func verify() throws -> [String] {
        let codec = ZstdCodec()
        return try env.read { txn in
            var problems: [String] = []
            func problem(_ s: String) { if problems.count < 1000 { problems.append("collection '\(name)': \(s)") } }
            let info = try info(txn)
            let prefix = Schema.prefix(id)
            var documents = Set<UInt32>()
            var postingsPerDoc: [UInt32: Int] = [:]
            try txn.scan(prefix: prefix, in: txn.tables.documents) { k, v in
                guard k.count == 8, let d = Schema.keyPart(k, 1) else {
                    problem("malformed document key")
                    return true
                }
                documents.insert(d)
                do { _ = try Schema.parseDocumentRecord(v) } catch { problem("document \(d): \(error)") }
                return true
            }
            let tombstones = try IndexWriter.tombstones(txn, collection: id)
            for d in tombstones where !documents.contains(d) { problem("tombstone for unknown document \(d)") }
            var mapped = 0
            try txn.scan(prefix: prefix, in: txn.tables.ids) { k, v in
                mapped += 1
                let ext = String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self)
                var r = ByteReader(v)
                guard let d = r.u32le(), r.isAtEnd else {
                    problem("id map entry '\(ext)' is malformed")
                    return true
                }
                if !documents.contains(d) { problem("id '\(ext)' maps to missing document \(d)") }
                if tombstones.contains(d) { problem("id '\(ext)' maps to deleted document \(d)") }
                return true
            }
            var forwardNonZeros: [UInt32: Int] = [:]
            try txn.scan(prefix: prefix, in: txn.tables.forward) { k, v in
                guard let d = Schema.keyPart(k, 1) else { return true }
                if !documents.contains(d) { problem("forward row for unknown document \(d)") }
                do {
                    let vec = try Schema.parseForwardRecord(v, verifyChecksum: true)
                    forwardNonZeros[d] = vec.count
                    if let last = vec.dimensions.last, last >= info.dimensions { problem("document \(d) has dimension \(last) out of range") }
                } catch { problem("forward row of document \(d): \(error)") }
                return true
            }
            for d in documents where forwardNonZeros[d] == nil { problem("document \(d) has no forward row") }
            if UInt64(tombstones.count) != info.deletedDocuments {
                problem("metadata says \(info.deletedDocuments) deleted documents, \(tombstones.count) tombstones stored")
            }
            if UInt64(documents.count - tombstones.count) != info.liveDocuments {
                problem("metadata says \(info.liveDocuments) live documents, \(documents.count - tombstones.count) stored")
            }
            if mapped != documents.count - tombstones.count {
                problem("\(mapped) ids mapped but \(documents.count - tombstones.count) live documents")
            }
            // Posting blocks, term by term.
            var termTotals: [UInt32: Schema.TermStats] = [:]
            var totalPostings: UInt64 = 0
            let decoder = BlockDecoder(codec: codec)
            var previousTerm: UInt32? = nil
            var previousLast: UInt32 = 0
            try txn.scan(prefix: prefix, in: txn.tables.postings) { k, v in
                guard k.count == 12, let term = Schema.keyPart(k, 1), let first = Schema.keyPart(k, 2) else {
                    problem("malformed posting key")
                    return true
                }
                do {
                    let h = try PostingBlock.Header(v)
                    let crc = PostingBlock.checksum(key: k, block: v)
                    if crc != h.crc { problem("term \(term) block at document \(first): checksum mismatch") }
                    let n = try decoder.decode(v, firstDocument: first, header: h)
                    let docs = decoder.documents
                    if previousTerm == term && first <= previousLast {
                        problem("term \(term): block at document \(first) overlaps the previous block")
                    }
                    previousTerm = term
                    previousLast = first &+ h.span
                    for i in 0..<n {
                        if !documents.contains(docs[i]) { problem("term \(term): posting for unknown document \(docs[i])") }
                        postingsPerDoc[docs[i], default: 0] += 1
                    }
                    var t = termTotals[term] ?? Schema.TermStats(maxWeight: 0, postings: 0, blocks: 0)
                    t.postings += UInt32(n)
                    t.blocks += 1
                    t.maxWeight = max(t.maxWeight, h.blockMax)
                    termTotals[term] = t
                    totalPostings += UInt64(n)
                } catch { problem("term \(term) block at document \(first): \(error)") }
                return true
            }
            var termsSeen = 0
            try txn.scan(prefix: prefix, in: txn.tables.terms) { k, v in
                termsSeen += 1
                guard let term = Schema.keyPart(k, 1) else { return true }
                do {
                    let s = try Schema.parseTermRecord(v)
                    guard let t = termTotals[term] else {
                        problem("term \(term) has statistics but no blocks")
                        return true
                    }
                    if s.postings != t.postings || s.blocks != t.blocks {
                        problem("term \(term): statistics say \(s.postings) postings in \(s.blocks) blocks, found \(t.postings) in \(t.blocks)")
                    }
                    if s.maxWeight < t.maxWeight { problem("term \(term): maximum weight \(s.maxWeight) is below a block maximum \(t.maxWeight)") }
                } catch { problem("term \(term): \(error)") }
                return true
            }
            if termsSeen != termTotals.count { problem("\(termTotals.count) terms have blocks but \(termsSeen) have statistics") }
            if totalPostings != info.postings { problem("metadata says \(info.postings) postings, blocks hold \(totalPostings)") }
            for (d, n) in forwardNonZeros where (postingsPerDoc[d] ?? 0) != n {
                problem("document \(d) has \(n) weights but \(postingsPerDoc[d] ?? 0) postings")
            }
            return problems
        }
    }
}
