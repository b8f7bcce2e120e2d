//! The reference fits drift trends with `scipy.stats.linregress`, i.e. numpy's pairwise
//! `mean` and a BLAS matrix product inside `np.cov`. Drift figures are emitted unrounded
//! (`slope_per_week`) and compared against thresholds, so they are reproduced bit-for-bit
//! here rather than with a textbook formula.
//!
//! The BLAS part follows OpenBLAS 0.3.x as shipped in the scipy-openblas wheel on x86-64:
//! each K-panel of at most 384 elements is one fused-multiply-add chain, panels are added in
//! order, and the last two panels of an uneven split share the remainder. That matched numpy
//! 2.4 / scipy 1.17 exactly on every series tried (2..9000 points); on another BLAS the last
//! bit may differ, as it would between two Python installs.

/// numpy's `pairwise_sum` for float64 (`loops_utils.h`): 8 accumulators per block of up to
/// 128 elements, recursive halving (rounded to a multiple of 8) above that.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean`.
pub fn mean(a: &[f64]) -> f64 {
    pairwise_sum(a) / a.len() as f64
}

/// `np.var` (population variance, ddof 0).
pub fn variance(a: &[f64]) -> f64 {
    let m = mean(a);
    let sq: Vec<f64> = a.iter().map(|v| (v - m) * (v - m)).collect();
    pairwise_sum(&sq) / a.len() as f64
}

/// OpenBLAS's K-loop blocking for a level-3 product: full panels of GEMM_Q while at least two
/// remain, then the remainder split in two halves (the first rounded up).
const GEMM_Q: usize = 384;

fn blas_dot(a: &[f64], b: &[f64]) -> f64 {
    let k = a.len();
    let mut total: Option<f64> = None;
    let mut ls = 0;
    while ls < k {
        let mut min_l = k - ls;
        if min_l >= GEMM_Q * 2 {
            min_l = GEMM_Q;
        } else if min_l > GEMM_Q {
            min_l = min_l.div_ceil(2);
        }
        let mut acc = 0.0f64;
        for i in ls..ls + min_l {
            acc = a[i].mul_add(b[i], acc);
        }
        total = Some(total.map_or(acc, |t| t + acc));
        ls += min_l;
    }
    total.unwrap_or(0.0)
}

/// What drift uses from `scipy.stats.linregress(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    /// Pearson r, clamped to [-1, 1]; 0 when one side has no spread, NaN when there is no
    /// covariance either (scipy's rule).
    pub r: f64,
}

/// `None` is scipy's ValueError: no points, or all x values identical.
pub fn linregress(x: &[f64], y: &[f64]) -> Option<Fit> {
    let n = x.len();
    if n == 0 || n != y.len() {
        return None;
    }
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    if max == min && n > 1 {
        return None;
    }
    // np.cov(x, y, bias=1): centre each row on its mean, X @ X.T, times 1/N.
    let (xm, ym) = (mean(x), mean(y));
    let dx: Vec<f64> = x.iter().map(|v| v - xm).collect();
    let dy: Vec<f64> = y.iter().map(|v| v - ym).collect();
    let inv = 1.0 / n as f64;
    let ssxm = blas_dot(&dx, &dx) * inv;
    let ssxym = blas_dot(&dx, &dy) * inv;
    let ssym = blas_dot(&dy, &dy) * inv;
    let r = if ssxm == 0.0 || ssym == 0.0 {
        if ssxym == 0.0 {
            f64::NAN
        } else {
            0.0
        }
    } else {
        (ssxym / (ssxm * ssym).sqrt()).clamp(-1.0, 1.0)
    };
    Some(Fit { slope: ssxym / ssxm, r })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// (n, slope, r, var(y), mean(x)) as f64 bits, from scipy 1.17.1 / numpy 2.4.6 on the
    /// same LCG series (`x_i = t0 + 3600 i + 10 u`, `y_i = 0.5 + 0.4 u`, x shifted to x_0).
    const SCIPY: &[(usize, u64, u64, u64, u64)] = &[
        (2, 0xbf0308d860ba750f, 0xbff0000000000000, 0x3f7181c5307cedfa, 0x409c22fa66a00000),
        (3, 0x3ebf4cb8fd0d9f4c, 0x3fbce88e5b7e741d, 0x3f635a188e6e0526, 0x40ac258d5f92aaab),
        (7, 0xbeca1a2cd1ec3678, 0xbfcd762fc79dda8a, 0x3f8364be7728ae20, 0x40c517fcf6aa4925),
        (8, 0x3ed3e53d367f1f40, 0x3fe0c68eba8a0074, 0x3f76cf1485b9e90e, 0x40c89a5a75758000),
        (9, 0xbeadb8d939b7d7a5, 0xbfb1b084165b6c26, 0x3f8d1408e1d03492, 0x40cc2159aaa00000),
        (17, 0xbea33580228bd77f, 0xbfb4d75139c8d09a, 0x3f8f7fe3f1c5fe53, 0x40dc1eab10fe3c3c),
        (129, 0x3e4b28aaf1cb9373, 0x3f8d62436c9d4d05, 0x3f8c98b59be01e19, 0x410c1ff7042f20fe),
        (300, 0x3e33461ec15ee21f, 0x3f896a00a41cc110, 0x3f8a086a386a1a1d, 0x41206cae56b17289),
        (385, 0x3e40b78d5e172baa, 0x3f9c095e14534176, 0x3f8a8083cf05a71a, 0x412517f7ce8a0cb2),
        (721, 0xbe2bf95d8c2d9a11, 0xbf9521c3bbe921cf, 0x3f8ca23d3e2998c8, 0x4133c67cf9f603e1),
        (1000, 0x3e2c8da13f9c642e, 0x3f9eb425220d5829, 0x3f8b2ef0f76a1654, 0x413b703c2e9cec8c),
        (2161, 0x3deac92f8104b89e, 0x3f6f55a0e3d6ed4d, 0x3f8ad0d5a67280b3, 0x414da9bf5ad16c8c),
        (9000, 0x3dcae126e0a3f553, 0x3f702757070fa15c, 0x3f8b8981e60882a5, 0x416ee54786c9a6fd),
    ];

    #[test]
    fn linregress_matches_scipy_bit_for_bit() {
        for &(n, slope, r, var, xmean) in SCIPY {
            let mut u = lcg(n as u64);
            let t: Vec<f64> = (0..n).map(|i| 1_795_532_927.0 - 2_592_000.0 + i as f64 * 3600.0 + u() * 10.0).collect();
            let y: Vec<f64> = (0..n).map(|_| 0.5 + 0.4 * u()).collect();
            let x: Vec<f64> = t.iter().map(|v| v - t[0]).collect();
            let fit = linregress(&x, &y).unwrap();
            assert_eq!(fit.slope.to_bits(), slope, "slope n={n}");
            assert_eq!(fit.r.to_bits(), r, "r n={n}");
            assert_eq!(variance(&y).to_bits(), var, "var n={n}");
            assert_eq!(mean(&x).to_bits(), xmean, "mean n={n}");
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(linregress(&[5.0, 5.0], &[1.0, 2.0]), None);
        assert_eq!(linregress(&[], &[]), None);
        let flat = linregress(&[0.0, 1.0, 2.0], &[0.5, 0.5, 0.5]).unwrap();
        assert_eq!(flat.slope, 0.0);
        assert!(flat.r.is_nan());
    }
}
