import Foundation
import SparseDB
import SparseDBCore
import SparseDBTestSupport
import SparseDBTools
import Testing

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
}
