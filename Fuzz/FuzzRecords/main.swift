// FuzzRecords: FuzzTargets.records (Fuzz/Harness). Built with -DFUZZING (tools/fuzz.sh) this is a
// libFuzzer target; otherwise a replay tool: `FuzzRecords FILE|DIR ...` runs each input once.
import Foundation
import SparseDBFuzzing

#if FUZZING
import CLibFuzzer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(FuzzTargets.records, data, size)
}

// SwiftPM aliases `main` to this top-level code, so libFuzzer's own main is never called.
var argc = CommandLine.argc
var argv = Optional(CommandLine.unsafeArgv)
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput))
#else
exit(replayMain("FuzzRecords", FuzzTargets.records))
#endif
