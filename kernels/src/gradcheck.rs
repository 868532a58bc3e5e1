//! Central finite differences in `f64`: the one numeric gradient that the kernels' tests,
//! `backflow::gradcheck` and the stress oracle share,
//! plus the kernels' own test helpers.

/// The gradient of the scalar function `f` at `x` by central differences with step `h`:
/// element `i` is `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h`. The error is O(h²) for smooth `f`;
/// in `f64`, `h` near `1e-6` balances it against rounding.
///
/// ```
/// use backflow_kernels::numeric_gradient;
/// // f(x, y) = x²·y at (3, 2): ∇f = (2xy, x²) = (12, 9).
/// let g = numeric_gradient(|v| v[0] * v[0] * v[1], &[3.0, 2.0], 1e-6);
/// assert!((g[0] - 12.0).abs() < 1e-6 && (g[1] - 9.0).abs() < 1e-6);
/// ```
pub fn numeric_gradient(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let up = f(&probe);
            probe[i] = x[i] - h;
            let down = f(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// `n` deterministic values in (-1, 1) from a small LCG seeded by `seed`.
#[cfg(test)]
pub(crate) fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Asserts `a` and `b` agree elementwise to `tol`, relative to magnitude above 1.
#[cfg(test)]
pub(crate) fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "length mismatch: {a:?} vs {b:?}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1.0);
        assert!(
            (x - y).abs() <= tol * scale,
            "at {i}: {x} vs {y}\n{a:?}\n{b:?}"
        );
    }
}

/// Checks a vector-Jacobian product: `analytic` must equal the gradient of
/// `L(x) = Σ gy ⊙ f(x)`, taken by central differences at `x`.
#[cfg(test)]
pub(crate) fn check_vjp(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], gy: &[f64], analytic: &[f64]) {
    let loss = |x: &[f64]| -> f64 { f(x).iter().zip(gy).map(|(y, g)| y * g).sum() };
    let numeric = numeric_gradient(loss, x, 1e-6);
    assert_close(analytic, &numeric, 1e-6);
}
