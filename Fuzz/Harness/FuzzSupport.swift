import Foundation
import SparseDBCore

#if canImport(Glibc)
import Glibc
#endif

/// A harness: runs one input through a parser. Returns whether the parser accepted it; a
/// `SparseDBError` is the parser refusing the input (caught inside), anything thrown out of a
/// harness is a ``FuzzFinding``.
package typealias FuzzHarness = (UnsafeRawBufferPointer) throws(FuzzFinding) -> Bool

/// What a fuzz target reports as a bug: the parser threw something other than a `SparseDBError`,
/// or what it accepted breaks an invariant it promises. (Crashes, traps and hangs need no type.)
package struct FuzzFinding: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Runs `body`, a call of the parser under test: a `SparseDBError` is the expected refusal of
/// bad input (nil), any other error a finding.
@inline(__always)
func refusing<R>(_ body: () throws -> R) throws(FuzzFinding) -> R? {
    do {
        return try body()
    } catch is SparseDBError {
        return nil
    } catch {
        throw FuzzFinding("threw \(type(of: error)) instead of SparseDBError: \(error)")
    }
}

/// An invariant of an accepted input.
@inline(__always)
func require(_ condition: Bool, _ what: @autoclosure () -> String) throws(FuzzFinding) {
    if !condition { throw FuzzFinding(what()) }
}

/// The libFuzzer entry point's body: a finding traps (libFuzzer then saves the input).
package func fuzzOne(_ harness: FuzzHarness, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    do throws(FuzzFinding) {
        _ = try harness(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("fuzz finding: \(error)")
    }
    return 0
}

/// The replay tool of a non-fuzzing build: runs every file named on the command line (and every
/// file inside a named directory) through `harness`. Returns the exit status: 0, or 1 after a
/// finding (crashes still crash, so that a debugger or the backtracer shows them).
package func replayMain(_ name: String, _ harness: FuzzHarness, arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Int32 {
    if arguments.isEmpty || arguments.contains("-h") || arguments.contains("--help") {
        print("usage: \(name) FILE|DIR ...   (replays inputs; built with -DFUZZING it is a libFuzzer binary)")
        return arguments.isEmpty ? 2 : 0
    }
    var files: [String] = []
    for argument in arguments {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
            print("\(name): \(argument): no such file or directory")
            return 2
        }
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []
            files += names.sorted().map { argument + "/" + $0 }.filter { !isDirectoryPath($0) }
        } else {
            files.append(argument)
        }
    }
    var accepted = 0
    var findings = 0
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else {
            print("\(name): \(file): cannot read")
            return 2
        }
        do throws(FuzzFinding) {
            let ok = try data.withUnsafeBytes { b in Result { () throws(FuzzFinding) in try harness(b) } }.get()
            if ok { accepted += 1 }
        } catch {
            findings += 1
            print("\(name): \(file): FINDING: \(error)")
        }
    }
    print("\(name): \(files.count) inputs, \(accepted) accepted, \(files.count - accepted - findings) refused, \(findings) findings")
    return findings == 0 ? 0 : 1
}

private func isDirectoryPath(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}

/// Runs `body` on a file holding `bytes`, in the temporary directory and named after the
/// process (concurrent fuzzers do not share it); the file is removed afterwards.
func withScratchFile<R>(_ name: String, _ bytes: some Collection<UInt8>, _ body: (String) throws(FuzzFinding) -> R) throws(FuzzFinding) -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparsedb-fuzz-\(getpid())-\(name)").path
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw FuzzFinding("harness: cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { unlink(path) }
    let array = Array(bytes)
    var done = 0
    while done < array.count {
        let n = array.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
        guard n > 0 else {
            close(fd)
            throw FuzzFinding("harness: cannot write \(path): \(String(cString: strerror(errno)))")
        }
        done += n
    }
    close(fd)
    return try body(path)
}

/// Little helpers over the fuzzer's bytes.
extension UnsafeRawBufferPointer {
    /// The bytes after the first `n` (empty when shorter).
    func after(_ n: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[Swift.min(n, count)...])
    }
}
