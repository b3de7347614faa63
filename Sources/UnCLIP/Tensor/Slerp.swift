import Foundation

/// Spherical interpolation between two vectors, with the angle between them (Shoemake 1985, applied to embeddings as
/// in unCLIP's interpolations, Ramesh et al. 2022 §3): the direction turns by θΩ in the plane of a and b, where
/// Ω = acos(â · b̂) is the angle between the whole vectors (a sum over every component — diffusers' community
/// interpolation pipelines take acos of the element-wise product instead, which is not that angle); the norm goes
/// linearly from |a| to |b|. Computed in double precision.
public enum Slerp {
    /// Directions closer than this (radians) are treated as equal: the result is â scaled.
    static let parallelAngle = 1e-6
    /// Directions within this of opposite have no plane of their own: one is chosen (`perpendicular`).
    static let oppositeAngle = 1e-6

    /// slerp(a, b, θ) for θ in [0, 1]; a and b are the same length and neither is zero (a typed error otherwise).
    public static func interpolate(_ a: [Float], _ b: [Float], _ theta: Float) throws -> [Float] {
        guard a.count == b.count, !a.isEmpty else {
            throw UnCLIPError.invalidArgument(name: "slerp", detail: "vectors of \(a.count) and \(b.count) values: they must be the same, non-zero length")
        }
        guard theta.isFinite, theta >= 0, theta <= 1 else {
            throw UnCLIPError.invalidArgument(name: "slerp", detail: "θ = \(theta) must be in [0, 1]")
        }
        let na = norm(a), nb = norm(b)
        guard na > 0, nb > 0, na.isFinite, nb.isFinite else {
            throw UnCLIPError.invalidArgument(name: "slerp", detail: "a zero or non-finite vector has no direction (norms \(na), \(nb))")
        }
        let t = Double(theta)
        let ua = a.map { Double($0) / na }, ub = b.map { Double($0) / nb }
        let omega = angle(ua, ub)
        let length = (1 - t) * na + t * nb
        let direction: [Double]
        if omega < parallelAngle {
            direction = ua
        } else {
            // the unit vector in the plane, perpendicular to â, towards b̂ (or a chosen one when b̂ ≈ −â)
            let dot = zip(ua, ub).reduce(0) { $0 + $1.0 * $1.1 }
            var w = omega > Double.pi - oppositeAngle ? perpendicular(ua) : zip(ub, ua).map { $0 - dot * $1 }
            let nw = norm(w)
            guard nw > 0 else {
                throw UnCLIPError.invalidArgument(name: "slerp", detail: "opposite one-dimensional vectors have no plane to turn in")
            }
            w = w.map { $0 / nw }
            let phi = t * omega
            direction = zip(ua, w).map { cos(phi) * $0 + sin(phi) * $1 }
        }
        return direction.map { Float($0 * length) }
    }

    /// The angle between a and b in radians, [0, π].
    public static func angle(_ a: [Float], _ b: [Float]) -> Double {
        let na = norm(a), nb = norm(b)
        return angle(a.map { Double($0) / na }, b.map { Double($0) / nb })
    }

    static func angle(_ ua: [Double], _ ub: [Double]) -> Double {
        // atan2 of |â × b̂| (via the rejection) and â·b̂: accurate near 0 and π, where acos is not
        let dot = zip(ua, ub).reduce(0) { $0 + $1.0 * $1.1 }
        let rejection = norm(zip(ub, ua).map { $0 - dot * $1 })
        return atan2(rejection, dot)
    }

    /// A unit vector perpendicular to u (unit): the standard basis vector least aligned with u, made orthogonal.
    static func perpendicular(_ u: [Double]) -> [Double] {
        let k = u.indices.min { abs(u[$0]) < abs(u[$1]) }!
        var e = [Double](repeating: 0, count: u.count)
        e[k] = 1
        let w = zip(e, u).map { $0 - u[k] * $1 }
        let n = norm(w)
        return w.map { $0 / n }
    }

    static func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
    static func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
