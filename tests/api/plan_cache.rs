//! A root differentiated with `retain_graph` keeps its plan for later passes: they give the
//! same gradients as a fresh plan, see hooks registered after the plan was built, and fail
//! as before once a pass has freed the graph.

use backflow::{grad, BackwardOptions, Error, Scheduler, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A small graph with sharing: x feeds three branches of different depths.
fn graph(x: &Tensor<f64>) -> Tensor<f64> {
    let a = (x * 2.0).sin();
    let b = (x * x).tanh();
    let c = &(&a * &b) + &x.exp();
    (&c + &a).sum()
}

#[test]
fn passes_over_a_cached_plan_agree_bitwise_with_a_fresh_plan() {
    for s in Scheduler::ALL {
        let opts = BackwardOptions::new()
            .scheduler(s)
            .threads(2)
            .retain_graph(true);
        let x = Tensor::<f64>::from_vec(vec![0.1, -0.7, 1.3], &[3])
            .unwrap()
            .requires_grad();
        let loss = graph(&x);
        let mut bits = Vec::new();
        for _ in 0..4 {
            loss.backward_with(&opts).unwrap();
            bits.push(x.grad().unwrap().to_vec());
            x.zero_grad();
        }
        // A fresh graph (and so a fresh plan) of the same values.
        graph(&x).backward_with(&opts).unwrap();
        let fresh = x.grad().unwrap().to_vec();
        for b in &bits {
            assert_eq!(b, &fresh, "{s:?}");
        }
    }
}

#[test]
fn hooks_registered_after_the_plan_was_cached_still_run() {
    let x = Tensor::<f32>::scalar(0.5).requires_grad();
    let y = x.sin();
    let loss = &y * 3.0;
    let opts = BackwardOptions::new().retain_graph(true);
    loss.backward_with(&opts).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    y.register_hook(move |g| {
        c.fetch_add(1, Ordering::SeqCst);
        Some(g * 2.0)
    });
    x.zero_grad();
    loss.backward_with(&opts).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!((x.grad().unwrap().item() - 6.0 * 0.5f32.cos()).abs() < 1e-6);
}

#[test]
fn a_pass_without_retain_graph_frees_it_even_with_a_cached_plan() {
    let x = Tensor::<f32>::scalar(2.0).requires_grad();
    let loss = (&x * &x).sin();
    loss.backward_with(&BackwardOptions::new().retain_graph(true))
        .unwrap();
    loss.backward().unwrap(); // reuses the plan, frees the graph
    match loss.backward().unwrap_err() {
        Error::GraphFreed { op } => assert_eq!(op, "sin"),
        e => panic!("expected GraphFreed, got {e}"),
    }
}

#[test]
fn grad_over_a_root_with_a_cached_plan_still_prunes() {
    let x = Tensor::<f64>::scalar(1.5).requires_grad();
    let w = Tensor::<f64>::scalar(-0.5).requires_grad();
    let loss = (&x * &w).exp();
    let opts = BackwardOptions::new().retain_graph(true);
    loss.backward_with(&opts).unwrap();
    let g = grad(&[&loss], &[], &[&w], &opts).unwrap();
    let want = 1.5 * (-0.75f64).exp();
    assert!((g[0].as_ref().unwrap().item() - want).abs() < 1e-12);
}
