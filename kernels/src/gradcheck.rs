//! Test helpers: deterministic inputs and a central finite-difference check in `f64`.

/// `n` deterministic values in (-1, 1) from a small LCG seeded by `seed`.
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
pub(crate) fn check_vjp(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], gy: &[f64], analytic: &[f64]) {
    const H: f64 = 1e-6;
    let loss = |x: &[f64]| -> f64 { f(x).iter().zip(gy).map(|(y, g)| y * g).sum() };
    let mut probe = x.to_vec();
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            probe[i] = x[i] + H;
            let up = loss(&probe);
            probe[i] = x[i] - H;
            let down = loss(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * H)
        })
        .collect();
    assert_close(analytic, &numeric, 1e-6);
}
