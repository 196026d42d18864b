import SparseDBCore
/// Branch-free exp and erf that the compiler vectorises in plain loops (libm's `expf`/`erff`
/// calls cannot be). `exp` is Cephes' expf polynomial after range reduction by ln 2 (about 1 ulp);
/// `erf` is Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7, below float32 rounding of
/// GELU's inputs). The encoder parity tests bound the end result against PyTorch.
enum FastMath {
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let xc = min(max(x, -87.3), 88.3)
        // Round to nearest with the 1.5·2^23 trick: the integer lands in the low mantissa bits.
        let shifted = xc * 1.442_695_04 + 12_582_912
        let k = shifted - 12_582_912
        let r = xc - k * 0.693_359_375 + k * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * r * r + r + 1
        let scale = Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23)
        return p * scale
    }

    @inline(__always)
    static func erf(_ x: Float) -> Float {
        let ax = abs(x)
        let t = 1 / (1 + 0.327_591_1 * ax)
        var poly: Float = 1.061_405_429
        poly = poly * t - 1.453_152_027
        poly = poly * t + 1.421_413_741
        poly = poly * t - 0.284_496_736
        poly = poly * t + 0.254_829_592
        let y = 1 - poly * t * exp(-ax * ax)
        return x < 0 ? -y : y
    }

    /// In place: x ← 0.5·x·(1 + erf(x/√2)), the erf GELU.
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + erf(v * 0.707_106_781_186_547_52))
        }
    }

    /// In place: x ← exp((x − shift)·scale); returns the sum.
    static func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float, scale: Float) -> Float {
        var sum: Float = 0
        for i in 0..<count {
            let e = exp((x[i] - shift) * scale)
            x[i] = e
            sum += e
        }
        return sum
    }
}
