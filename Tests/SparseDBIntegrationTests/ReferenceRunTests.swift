import Foundation
import SparseDB
import SparseDBTestSupport
import Testing

/// The reference encoder's exact runs (sentence-transformers vectors + exact search), reproduced
/// by every algorithm from the reference vectors.
@Suite struct ReferenceRunTests {
    @Test(arguments: ["cranfield", "nfcorpus"])
    func referenceRunsAreReproduced(name: String) throws {
        try withTemporaryDirectory { dir in
            let db = try Database(path: dir + "/db")
            defer { db.close() }
            let c = try db.collection(name, creatingWithDimensions: 30_522)
            let docs = try readVectors(referencePath(name, "doc_vectors.jsonl"))
            for start in stride(from: 0, to: docs.count, by: 2000) {
                try c.upsert(docs[start..<min(docs.count, start + 2000)].map { Document(id: $0.id, vector: $0.vector) })
            }
            let queries = try readVectors(referencePath(name, "query_vectors.jsonl"))
            let reference = try readRun(referencePath(name, "run.trec"), depth: 11)
            let oracle = BruteForce(docs)
            var checked = 0
            for (qid, q) in queries {
                guard let expected = reference[qid] else { continue }
                let ranking = oracle.ranking(q)
                for algorithm in SearchAlgorithm.allCases {
                    let got = try c.search(q, options: SearchOptions(k: 10, algorithm: algorithm)).hits.map { ($0.id, $0.score) }
                    // The reference scores are printed with 6 decimals from float32 sums.
                    #expect(rankingsAgree(expected, got, k: 10, tolerance: 2e-5), "\(name) q\(qid) \(algorithm)")
                    // And against our own brute force, exactly.
                    let problem = oracle.mismatch(got, query: q, k: 10, ranking: ranking)
                    #expect(problem == nil, "\(name) q\(qid) \(algorithm): \(problem ?? "")")
                }
                checked += 1
            }
            #expect(checked == queries.count)
        }
    }
}
