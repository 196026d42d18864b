import SparseDBTestSupport
import Testing

/// The example host program under Examples/ builds with the package and runs as documented.
@Suite struct ExampleTests {
    @Test func hostProgramRuns() throws {
        let r = try run(productPath("sparsedb-example"), [])
        #expect(r.status == 0, "\(r.err)")
        // apple: 2.0; banana: 1.5 + 1.0 = 2.5; carrot: 0.2.
        #expect(r.out.contains("bmw: banana 2.50, apple 2.00"))
        #expect(r.out.contains("after deleting banana: apple, carrot"))
        #expect(r.out.contains("documents: 2"))
        #expect(r.out.contains("text search: paris"))
    }
}
