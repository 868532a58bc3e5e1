//! `no_grad` and `detach` cut the graph: what they produce is a constant to backward, under
//! every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{is_grad_enabled, no_grad, BackwardOptions, Error, Scheduler, Tensor};

type T64 = Tensor<f64>;

use crate::common::configs;

#[test]
fn no_grad_results_are_constants_to_backward() {
    // y = x · no_grad(x²): dy/dx = x² (the no_grad factor is a constant), not 3x².
    for opts in configs() {
        let x = T64::scalar(1.5).requires_grad();
        let c = no_grad(|| &x * &x);
        assert!(!c.needs_grad() && c.is_leaf());
        (&x * &c).backward_with(&opts).unwrap();
        assert_eq!(x.grad().unwrap().item(), 2.25, "{opts:?}");
    }
}

#[test]
fn detach_cuts_the_graph_and_shares_the_values() {
    // y = x · detach(x²): dy/dx = x².
    for opts in configs() {
        let x = T64::scalar(1.5).requires_grad();
        let sq = &x * &x;
        let d = sq.detach();
        assert!(!d.needs_grad());
        assert_eq!(d.to_vec(), sq.to_vec());
        (&x * &d).backward_with(&opts).unwrap();
        assert_eq!(x.grad().unwrap().item(), 2.25, "{opts:?}");
    }
}

#[test]
fn a_wide_graph_with_detached_and_no_grad_branches() {
    // L = Σ_b tanh(x @ W_b).sum(), where odd branches are detached and every fourth is
    // built under no_grad: only the other branches' weights get a gradient, equal to the
    // gradient of the same graph without the cut branches.
    const BRANCHES: usize = 32;
    for opts in configs() {
        let x = T64::randn(&[4, 8], 0);
        let weights: Vec<T64> = (0..BRANCHES)
            .map(|b| (&T64::randn(&[8, 8], 1 + b as u64) * 0.3).requires_grad())
            .collect();
        let branch = |w: &T64| x.matmul(w).unwrap().tanh().matmul(w).unwrap().tanh().sum();
        let mut loss: Option<T64> = None;
        let mut kept: Option<T64> = None;
        let mut copies = Vec::new();
        for (b, w) in weights.iter().enumerate() {
            let s = if b % 4 == 0 {
                no_grad(|| branch(w))
            } else if b % 2 == 1 {
                branch(w).detach()
            } else {
                branch(w)
            };
            assert_eq!(s.needs_grad(), b % 4 == 2);
            loss = Some(loss.map_or(s.clone(), |l| &l + &s));
            if b % 4 == 2 {
                let copy = w.detach().requires_grad();
                let k = branch(&copy);
                kept = Some(kept.map_or(k.clone(), |l| &l + &k));
                copies.push((b, copy));
            }
        }
        loss.unwrap().backward_with(&opts).unwrap();
        for (b, w) in weights.iter().enumerate() {
            assert_eq!(w.grad().is_some(), b % 4 == 2, "{opts:?} branch {b}");
        }
        // The values of the loss include the cut branches; the gradients do not.
        let reference = kept.unwrap();
        reference
            .backward_with(&BackwardOptions::new().scheduler(Scheduler::Dfs))
            .unwrap();
        for (b, copy) in copies {
            let (got, want) = (
                weights[b].grad().unwrap().to_vec(),
                copy.grad().unwrap().to_vec(),
            );
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{opts:?} branch {b}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn backward_from_a_no_grad_result_is_an_error() {
    for opts in configs() {
        let x = T64::scalar(1.0).requires_grad();
        let y = no_grad(|| x.sin());
        let err = y.backward_with(&opts).unwrap_err();
        assert!(matches!(err, Error::NoGraph { .. }), "{err:?}");
        let err = x.sin().detach().backward_with(&opts).unwrap_err();
        assert!(matches!(err, Error::NoGraph { .. }), "{err:?}");
    }
}

#[test]
fn no_grad_nests_restores_and_stays_on_its_thread() {
    assert!(is_grad_enabled());
    let x = T64::scalar(1.0).requires_grad();
    no_grad(|| {
        assert!(!is_grad_enabled());
        no_grad(|| assert!(!x.sin().needs_grad()));
        assert!(
            !is_grad_enabled(),
            "the inner no_grad restores the outer state"
        );
        // Another thread records as usual.
        std::thread::scope(|s| {
            s.spawn(|| assert!(x.sin().needs_grad())).join().unwrap();
        });
    });
    assert!(is_grad_enabled());
    let caught = std::panic::catch_unwind(|| no_grad(|| panic!("inside no_grad")));
    assert!(caught.is_err());
    assert!(is_grad_enabled(), "restored after a panic");
}

#[test]
fn backward_called_inside_no_grad_still_differentiates() {
    // no_grad stops recording ops; it does not stop a backward pass (whose workers run on
    // other threads): d/dx sin x = cos x.
    for opts in configs() {
        let x = T64::scalar(0.4).requires_grad();
        let y = x.sin();
        no_grad(|| y.backward_with(&opts)).unwrap();
        assert_eq!(x.grad().unwrap().item(), 0.4f64.cos(), "{opts:?}");
    }
}
