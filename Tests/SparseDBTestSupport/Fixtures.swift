import Foundation

/// SplitMix64 float32 values `mean + scale·(2u − 1)`, identical to tools/make_fixtures.py.
package func recipeValues(seed: UInt64, count: Int, mean: Double, scale: Double) -> [Float] {
    var state = seed
    var out = [Float](repeating: 0, count: count)
    for i in 0..<count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Double(z >> 11) * (1.0 / Double(UInt64(1) << 53))
        out[i] = Float(mean + scale * (2 * u - 1))
    }
    return out
}

/// Writes a safetensors file (header padded to 8 bytes, tensors in name order).
package func writeSafeTensors(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])], to path: String) throws {
    var header: [String: Any] = [:]
    var offset = 0
    var body: [UInt8] = []
    for t in tensors.sorted(by: { $0.name < $1.name }) {
        header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
        body += t.bytes
        offset += t.bytes.count
    }
    var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
    while json.count % 8 != 0 { json.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
    out += json
    out += body
    try Data(out).write(to: URL(fileURLWithPath: path))
}

/// A temporary copy of fixture `family` with its weight files regenerated from their recipes.
package func materializeFixture(_ family: String, in dir: String) throws -> String {
    let source = fixturesDirectory + "/" + family
    let target = dir + "/" + family
    try FileManager.default.copyItem(atPath: source, toPath: target)
    let walker = FileManager.default.enumerator(atPath: target)!
    var recipes: [String] = []
    while let f = walker.nextObject() as? String { if f.hasSuffix(".recipe.json") { recipes.append(f) } }
    for r in recipes {
        let path = target + "/" + r
        let list = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [[String: Any]]
        var tensors: [(String, String, [Int], [UInt8])] = []
        for t in list {
            let name = t["name"] as! String
            let shape = (t["shape"] as! [NSNumber]).map(\.intValue)
            let count = shape.reduce(1, *)
            if t["zeros"] as? Bool == true {
                let dtype = (t["dtype"] as! String) == "int64" ? "I64" : "F32"
                tensors.append((name, dtype, shape, [UInt8](repeating: 0, count: count * (dtype == "I64" ? 8 : 4))))
                continue
            }
            let values = recipeValues(
                seed: (t["seed"] as! NSNumber).uint64Value, count: count, mean: (t["mean"] as! NSNumber).doubleValue,
                scale: (t["scale"] as! NSNumber).doubleValue)
            tensors.append((name, "F32", shape, values.withUnsafeBytes { Array($0) }))
        }
        try writeSafeTensors(tensors.map { (name: $0.0, dtype: $0.1, shape: $0.2, bytes: $0.3) }, to: String(path.dropLast(".recipe.json".count)))
    }
    return target
}
