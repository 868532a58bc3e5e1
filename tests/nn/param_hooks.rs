//! Parameters keep their identity across optimiser steps: hooks and grad-ready callbacks
//! registered once, through `p.get()`, run on every step, under every scheduler.

use crate::common;

use backflow::nn::{cross_entropy, Adam, Linear, Module, Optimizer, Sequential, Sgd, Tanh};
use backflow::Tensor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const STEPS: usize = 5;

fn model() -> Sequential {
    Sequential::new()
        .push(Linear::new(4, 8, 1))
        .push(Tanh)
        .push(Linear::new(8, 3, 2))
}

fn batch() -> (Tensor, Vec<usize>) {
    (Tensor::randn(&[6, 4], 3), vec![0, 1, 2, 0, 1, 2])
}

#[test]
fn on_grad_ready_runs_once_per_parameter_per_step() {
    for opts in common::configs() {
        let model = model();
        let params = model.parameters();
        let counts: Vec<Arc<AtomicUsize>> = params
            .iter()
            .map(|p| {
                let count = Arc::new(AtomicUsize::new(0));
                let seen = Arc::clone(&count);
                p.get().on_grad_ready(move |_| {
                    seen.fetch_add(1, Ordering::Relaxed);
                });
                count
            })
            .collect();
        let mut opt = Adam::new(params.clone(), 1e-2);
        let (x, y) = batch();
        let mut losses = Vec::new();
        for _ in 0..STEPS {
            let loss = cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
            losses.push(loss.item());
            loss.backward_with(&opts).unwrap();
            opt.step().unwrap();
        }
        for (p, c) in params.iter().zip(&counts) {
            assert_eq!(
                c.load(Ordering::Relaxed),
                STEPS,
                "{opts:?}: callback of a {:?} parameter",
                p.shape()
            );
        }
        assert!(
            losses[STEPS - 1] < losses[0],
            "{opts:?}: the steps still train: {losses:?}"
        );
    }
}

#[test]
fn register_hook_survives_steps_and_can_scale_the_gradient() {
    // A hook that doubles the gradient of a scalar parameter p in L = p², under SGD lr 0.1:
    // p ← p − 0.1·2·(2p) = 0.6·p per step.
    let p = backflow::nn::Param::new(Tensor::scalar(1.0));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    p.get().register_hook(move |g| {
        seen.fetch_add(1, Ordering::Relaxed);
        Some(g * 2.0)
    });
    let mut opt = Sgd::new(vec![p.clone()], 0.1);
    for _ in 0..STEPS {
        (&p.get() * &p.get()).backward().unwrap();
        opt.step().unwrap();
    }
    assert_eq!(calls.load(Ordering::Relaxed), STEPS);
    let want = 0.6f32.powi(STEPS as i32);
    assert!(
        (p.get().item() - want).abs() < 1e-6,
        "{} vs {want}",
        p.get().item()
    );
}

#[test]
fn a_step_clears_the_gradient_and_keeps_old_graphs_values() {
    let p = backflow::nn::Param::new(Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap());
    let old = p.get();
    (&old * 3.0).sum().backward().unwrap();
    let mut opt = Sgd::new(vec![p.clone()], 0.5);
    opt.step().unwrap();
    assert!(p.grad().is_none(), "a step starts the gradient afresh");
    assert_eq!(p.get().to_vec(), vec![-0.5, 0.5]);
    assert_eq!(
        old.to_vec(),
        vec![1.0, 2.0],
        "a handle taken before keeps its values"
    );
    assert!(p.get().with_values(vec![1.0]).is_err(), "wrong length");
    let op = &p.get() * 2.0;
    let err = op.with_values(vec![0.0, 0.0]).unwrap_err().to_string();
    assert!(
        err.contains("with_values") && err.contains("not a leaf"),
        "{err}"
    );
}
