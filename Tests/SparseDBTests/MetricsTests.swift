import Foundation
import Testing

@testable import SparseDB

/// The metric code against ir_measures: the reference summaries hold ir_measures' values for the
/// reference runs.
@Suite struct MetricsTests {
    @Test(arguments: ["scifact", "nfcorpus", "cranfield"])
    func matchesIrMeasuresOnTheReferenceRuns(name: String) throws {
        let judgments = try Metrics.readJudgments("\(sharedDirectory)/data/\(name)/qrels/test.tsv")
        let run = try Metrics.readRun(referencePath(name, "run.trec"))
        let scores = Metrics.evaluate(run: run, judgments: judgments)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: referencePath(name, "summary.json")))) as! [String: Any]
        let m = summary["metrics"] as! [String: Double]
        #expect(abs(scores.nDCG10 - m["nDCG@10"]!) < 1e-9, "nDCG@10 \(scores.nDCG10) vs \(m["nDCG@10"]!)")
        #expect(abs(scores.RR10 - m["RR@10"]!) < 1e-9, "RR@10 \(scores.RR10) vs \(m["RR@10"]!)")
        #expect(abs(scores.R100 - m["R@100"]!) < 1e-9, "R@100 \(scores.R100) vs \(m["R@100"]!)")
        #expect(abs(scores.AP100 - m["AP@100"]!) < 1e-9, "AP@100 \(scores.AP100) vs \(m["AP@100"]!)")
    }

    @Test func handComputedCase() {
        // Two relevant documents (grades 2 and 1); the run finds the grade-1 one at rank 2 only.
        let judgments: Metrics.Judgments = ["q": ["a": 2, "b": 1, "c": 0]]
        let run: Metrics.Run = ["q": [("c", 3), ("b", 2), ("x", 1)]]
        let s = Metrics.evaluate(run: run, judgments: judgments)
        #expect(abs(s.nDCG10 - (1 / log2(3.0)) / (2 + 1 / log2(3.0))) < 1e-12)
        #expect(s.RR10 == 0.5)
        #expect(s.R100 == 0.5)
        #expect(abs(s.AP100 - 0.25) < 1e-12)
    }
}
