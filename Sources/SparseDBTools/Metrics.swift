import SparseDB
import SparseDBCore
import Foundation

/// Retrieval metrics with trec_eval / ir_measures definitions (graded relevance, linear gain):
/// nDCG@10, RR@10 (MRR@10), R@100, AP@100. Queries absent from the judgments are not scored;
/// judged queries with no run count as 0.
package enum Metrics {
    /// query id → document id → relevance grade.
    package typealias Judgments = [String: [String: Int]]
    /// query id → ranked (document id, score), best first.
    package typealias Run = [String: [(String, Double)]]

    /// Reads BEIR `qrels/test.tsv` (`query-id <TAB> corpus-id <TAB> score`, header line first).
    package static func readJudgments(_ path: String) throws -> Judgments {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw SparseDBError(.notFound, "\(path): cannot read judgments") }
        var out: Judgments = [:]
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            if n == 0 && f.first == "query-id" { continue }
            guard f.count >= 3, let grade = Int(f[2].trimmingCharacters(in: .whitespaces)) else {
                throw SparseDBError(.invalidInput, "\(path):\(n + 1): expected query-id<TAB>corpus-id<TAB>score")
            }
            out[String(f[0]), default: [:]][String(f[1])] = grade
        }
        return out
    }

    /// Reads a TREC run (`qid Q0 docid rank score tag`), ordered by score (ties: doc id descending, as trec_eval).
    package static func readRun(_ path: String) throws -> Run {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw SparseDBError(.notFound, "\(path): cannot read run") }
        var out: Run = [:]
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 5, let score = Double(f[4]) else { throw SparseDBError(.invalidInput, "\(path):\(n + 1): not a TREC run line") }
            out[String(f[0]), default: []].append((String(f[2]), score))
        }
        for (q, list) in out { out[q] = list.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 } }
        return out
    }

    package struct Scores: Codable, Equatable {
        package var nDCG10: Double
        package var RR10: Double
        package var R100: Double
        package var AP100: Double
        package var queries: Int

        enum CodingKeys: String, CodingKey {
            case nDCG10 = "nDCG@10", RR10 = "RR@10", R100 = "R@100", AP100 = "AP@100", queries
        }
    }

    package static func evaluate(run: Run, judgments: Judgments) -> Scores {
        var sums = (ndcg: 0.0, rr: 0.0, r: 0.0, ap: 0.0)
        var n = 0
        for (qid, judged) in judgments {
            let relevant = judged.filter { $0.value > 0 }
            guard !relevant.isEmpty else { continue }
            n += 1
            let ranked = (run[qid] ?? []).sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 > $1.0 }
            // nDCG@10
            var dcg = 0.0
            for (i, (doc, _)) in ranked.prefix(10).enumerated() {
                let g = Double(max(0, judged[doc] ?? 0))
                if g > 0 { dcg += g / log2(Double(i) + 2) }
            }
            var idcg = 0.0
            for (i, g) in judged.values.filter({ $0 > 0 }).sorted(by: >).prefix(10).enumerated() { idcg += Double(g) / log2(Double(i) + 2) }
            sums.ndcg += idcg > 0 ? dcg / idcg : 0
            // RR@10: ir_measures computes it with MS MARCO's code, which breaks score ties by
            // ascending document id (trec_eval's measures break them by descending id).
            let msmarcoOrder = ranked.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            if let first = msmarcoOrder.prefix(10).firstIndex(where: { (judged[$0.0] ?? 0) > 0 }) { sums.rr += 1 / Double(first + 1) }
            // R@100 and AP@100
            var hits = 0
            var precisionSum = 0.0
            for (i, (doc, _)) in ranked.prefix(100).enumerated() where (judged[doc] ?? 0) > 0 {
                hits += 1
                precisionSum += Double(hits) / Double(i + 1)
            }
            sums.r += Double(hits) / Double(relevant.count)
            sums.ap += precisionSum / Double(relevant.count)
        }
        let d = Double(max(n, 1))
        return Scores(nDCG10: sums.ndcg / d, RR10: sums.rr / d, R100: sums.r / d, AP100: sums.ap / d, queries: n)
    }
}
