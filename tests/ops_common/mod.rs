//! Helpers shared by the `ops_*` tests: finite-difference gradchecks in f64 of first and
//! second derivatives, under every scheduler.

#![allow(dead_code)]

use backflow::{enable_grad, grad, gradcheck, BackwardOptions, GradcheckTolerance, Scheduler};
use backflow::{Result, Tensor};

pub type T64 = Tensor<f64>;

/// Standard normal values of `shape`.
pub fn normal(shape: &[usize], seed: u64) -> T64 {
    Tensor::randn(shape, seed)
}

/// A tensor of `shape` holding `data`.
pub fn t64(data: Vec<f64>, shape: &[usize]) -> T64 {
    Tensor::from_vec(data, shape).unwrap()
}

/// Every scheduler, `Parallel` at 2 threads.
pub fn schedulers() -> Vec<BackwardOptions> {
    Scheduler::ALL
        .into_iter()
        .map(|s| BackwardOptions::new().scheduler(s).threads(2))
        .collect()
}

/// `Σ f(xs) ⊙ w`, with `w` fixed by the output's shape: a general upstream gradient.
pub fn weighted(y: &T64) -> T64 {
    let w = normal(y.shape(), 0xC0FFEE);
    (y * &w).sum()
}

/// Checks the gradient of `Σ f(xs) ⊙ w` against finite differences under every scheduler,
/// with the fused backwards and with the recorded ones (`create_graph`).
#[track_caller]
pub fn check(name: &str, inputs: &[&T64], f: impl Fn(&[T64]) -> Result<T64>) {
    for opts in schedulers() {
        for create_graph in [false, true] {
            let opts = opts.clone().create_graph(create_graph);
            gradcheck(
                |xs| Ok(weighted(&f(xs)?)),
                inputs,
                &opts,
                GradcheckTolerance::default(),
            )
            .unwrap_or_else(|e| panic!("{name} ({:?}, create_graph {create_graph}): {e}", opts));
        }
    }
}

/// Checks second derivatives: the gradient of `h = Σ_i ∇_i L · v_i`, where
/// `L = Σ f(xs) ⊙ w + Σ f(xs)²` and `∇L` is computed with `create_graph`, against finite
/// differences of `h`, under every scheduler.
#[track_caller]
pub fn check_second(name: &str, inputs: &[&T64], f: impl Fn(&[T64]) -> Result<T64>) {
    let vs: Vec<T64> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| normal(x.shape(), 500 + i as u64))
        .collect();
    for opts in schedulers() {
        let first = |xs: &[T64]| -> Result<T64> {
            enable_grad(|| {
                let leaves: Vec<T64> = xs
                    .iter()
                    .map(|x| {
                        if x.needs_grad() {
                            x.clone()
                        } else {
                            x.detach().requires_grad()
                        }
                    })
                    .collect();
                let y = f(&leaves)?;
                let l = &weighted(&y) + &(&y * &y).sum();
                let refs: Vec<&T64> = leaves.iter().collect();
                let grads = grad(&[&l], &[], &refs, &opts.clone().create_graph(true))?;
                let mut h = T64::scalar(0.0);
                for (g, v) in grads.iter().zip(&vs) {
                    if let Some(g) = g {
                        h = &h + &(g * v).sum();
                    }
                }
                Ok(h)
            })
        };
        gradcheck(first, inputs, &opts, GradcheckTolerance::default())
            .unwrap_or_else(|e| panic!("{name} second order ({opts:?}): {e}"));
    }
}

/// Asserts `a` and `b` agree elementwise within `tol`.
#[track_caller]
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ: {a:?} vs {b:?}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol,
            "element {i}: {x} vs {y}\n{a:?}\n{b:?}"
        );
    }
}

/// Asserts the error's message names every one of `parts`.
#[track_caller]
pub fn assert_names(e: &backflow::Error, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not name {p:?}");
    }
}
