//! `exp` and `tanh` written as straight-line arithmetic, so that a loop over a slice
//! auto-vectorises (libm's are scalar calls). Accurate to a few ulp (tested below against
//! `std` over a dense sweep).
//!
//! - `exp`: Cody–Waite range reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, with `n` rounded by
//!   the add-and-subtract-1.5·2^p trick; `e^r` by its Taylor polynomial (the remainder is
//!   below half an ulp), by Horner's rule (a multiply and an add a term, never fused: a
//!   native build and a baseline one give the same bits); `2^n` built from the exponent bits in two halves so that
//!   subnormal and near-overflow results scale exactly.
//! - `tanh x = sign(x) · m / (m + 2)` with `m = expm1(2|x|)`: the Taylor series of `expm1`
//!   below 1, `e^y − 1` above (where the subtraction loses under one bit), and `|x|`
//!   clamped where `tanh` rounds to 1.
//!
//! Every choice is a select, not a branch, and NaN propagates.

macro_rules! transcendental {
    ($exp:ident, $tanh:ident, $t:ty, $int:ty, $bits:ty, $mant:literal, $bias:literal,
     $lo:literal, $hi:literal, $ln2_hi:literal, $ln2_lo:literal, $exp_terms:literal,
     $expm1_terms:literal, $tanh_limit:literal) => {
        /// The longer series' highest power.
        const MAX_TERMS: usize = if $exp_terms > $expm1_terms {
            $exp_terms
        } else {
            $expm1_terms
        };

        /// `1/k!` for `k` up to [`MAX_TERMS`]: the Taylor coefficients of `e^x`, and (from
        /// `k = 1`) those of `expm1(y)/y`.
        const INV_FACTORIAL: [$t; MAX_TERMS + 1] = {
            let mut c = [1.0; MAX_TERMS + 1];
            let mut f: $t = 1.0;
            let mut k = 1;
            while k <= MAX_TERMS {
                f *= k as $t;
                c[k] = 1.0 / f;
                k += 1;
            }
            c
        };

        /// `e^x`, vectorisable; `exp(±inf)` is `inf`/`0` and NaN stays NaN.
        #[inline(always)]
        pub(crate) fn $exp(x: $t) -> $t {
            // Outside [lo, hi] e^x rounds to 0 or overflows; the clamp keeps n's bits in range.
            let x = x.clamp($lo, $hi);
            // 1.5·2^mant: adding it rounds x·log2(e) to an integer held in the low bits.
            let magic: $t = 1.5 * (1u64 << $mant) as $t;
            let t = x * std::f64::consts::LOG2_E as $t + magic;
            let n = t - magic;
            let r = x - n * $ln2_hi - n * $ln2_lo;
            // Taylor, by Horner's rule over the coefficients 1/i!.
            let mut p: $t = INV_FACTORIAL[$exp_terms];
            let mut i = $exp_terms;
            while i > 0 {
                i -= 1;
                p = p * r + INV_FACTORIAL[i];
            }
            let ni = (t.to_bits() as $int).wrapping_sub(magic.to_bits() as $int);
            let n1 = ni >> 1;
            let scale =
                |k: $int| <$t>::from_bits(k.wrapping_add($bias).wrapping_shl($mant) as $bits);
            p * scale(n1) * scale(ni.wrapping_sub(n1))
        }

        /// `tanh x`, vectorisable; `tanh(±inf) = ±1` and NaN stays NaN.
        #[inline(always)]
        pub(crate) fn $tanh(x: $t) -> $t {
            let a = x.abs();
            // min() would turn NaN into the limit; this keeps NaN.
            let a = if a > $tanh_limit { $tanh_limit } else { a };
            let y = 2.0 * a;
            // expm1(y) = y(1 + y/2! + y²/3! + ...) below 1, by Horner's rule.
            let mut s: $t = INV_FACTORIAL[$expm1_terms];
            let mut i = $expm1_terms;
            while i > 1 {
                i -= 1;
                s = s * y + INV_FACTORIAL[i];
            }
            let m = if y < 1.0 { y * s } else { $exp(y) - 1.0 };
            (m / (m + 2.0)).copysign(x)
        }
    };
}

transcendental!(
    exp_f32,
    tanh_f32,
    f32,
    i32,
    u32,
    23,
    127,
    -104.0,
    89.0,
    0.693_359_4,
    -2.121_944_4e-4,
    8,
    11,
    10.0
);
/// The f64 kernels are tested, not used: `Element` keeps std's `exp` and `tanh` for f64,
/// the gradcheck type, where results bit-identical to std's matter more than speed (tests
/// compare them exactly).
#[cfg_attr(not(test), allow(dead_code))]
mod wide {
    transcendental!(
        exp_f64,
        tanh_f64,
        f64,
        i64,
        u64,
        52,
        1023,
        -746.0,
        710.0,
        6.931_471_803_691_238e-1,
        1.908_214_929_270_587_7e-10,
        13,
        19,
        20.0
    );
}

#[cfg(test)]
mod tests {
    use super::wide::{exp_f64, tanh_f64};
    use super::*;

    /// Distance in units in the last place between `got` and the exact `want` (given in
    /// f64 for f32 results), measured at `want`'s magnitude.
    fn ulps(got: f64, want: f64, eps: f64, min_normal: f64) -> f64 {
        if got == want {
            return 0.0;
        }
        let ulp = (want.abs().max(min_normal) * eps).max(f64::MIN_POSITIVE);
        (got - want).abs() / ulp
    }

    /// A dense sweep over [-lim, lim] plus the points where things go wrong.
    fn sweep(lim: f64) -> impl Iterator<Item = f64> {
        let dense = (-400_000..=400_000).map(move |i| i as f64 * lim / 400_000.0);
        let small = (-300..=300).map(|e| 2f64.powf(e as f64 / 10.0));
        dense
            .chain(small.clone())
            .chain(small.map(|v| -v))
            .chain([0.0, -0.0, 1e-30, -1e-30])
    }

    #[test]
    fn f32_within_a_few_ulp_of_std() {
        let (eps, min) = (f32::EPSILON as f64, f32::MIN_POSITIVE as f64);
        let (mut worst_exp, mut worst_tanh) = (0.0f64, 0.0f64);
        for v in sweep(105.0) {
            let x = v as f32;
            let want = (x as f64).exp();
            if want < f32::MAX as f64 && want > min {
                worst_exp = worst_exp.max(ulps(exp_f32(x) as f64, want, eps, min));
            }
            let want = (x as f64).tanh();
            worst_tanh = worst_tanh.max(ulps(tanh_f32(x) as f64, want, eps, min));
        }
        assert!(worst_exp <= 2.0, "exp_f32 is off by {worst_exp} ulp");
        assert!(worst_tanh <= 3.0, "tanh_f32 is off by {worst_tanh} ulp");
    }

    #[test]
    fn f64_within_a_few_ulp_of_std() {
        let (eps, min) = (f64::EPSILON, f64::MIN_POSITIVE);
        let (mut worst_exp, mut worst_tanh) = (0.0f64, 0.0f64);
        for x in sweep(720.0).chain(sweep(25.0)) {
            let want = x.exp();
            if want.is_finite() && want > min {
                worst_exp = worst_exp.max(ulps(exp_f64(x), want, eps, min));
            }
            worst_tanh = worst_tanh.max(ulps(tanh_f64(x), x.tanh(), eps, min));
        }
        // std's own results are within 1 ulp of the truth.
        assert!(worst_exp <= 3.0, "exp_f64 is off by {worst_exp} ulp");
        assert!(worst_tanh <= 4.0, "tanh_f64 is off by {worst_tanh} ulp");
    }

    #[test]
    fn special_values() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan() && exp_f64(f64::NAN).is_nan());
        // Subnormal results: e^-100 ≈ 3.7e-44 in f32, e^-740 ≈ 4.2e-322 in f64.
        let sub = exp_f32(-100.0) as f64;
        assert!((sub / (-100f64).exp() - 1.0).abs() < 0.05, "{sub}");
        let sub = exp_f64(-740.0);
        assert!((sub / (-740f64).exp() - 1.0).abs() < 0.01, "{sub}");
        for (x, want) in [
            (0.0, 0.0),
            (f64::INFINITY, 1.0),
            (f64::NEG_INFINITY, -1.0),
            (30.0, 1.0),
        ] {
            assert_eq!(tanh_f64(x), want);
            assert_eq!(tanh_f32(x as f32), want as f32);
        }
        assert!(tanh_f64(-0.0).is_sign_negative() && tanh_f32(-0.0).is_sign_negative());
        assert!(tanh_f32(f32::NAN).is_nan() && tanh_f64(f64::NAN).is_nan());
    }
}
