//! Multi-root backward: `backflow::backward(&[&y1, &y2], &[&g1, &g2], opts)` gives the sum of
//! the separate passes `y1` with `g1` and `y2` with `g2`, in one pass over the shared graph.
//! Under every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{backward, grad, BackwardOptions, BackwardStats, Error, Tensor};

type T64 = Tensor<f64>;

use crate::common::{configs, watchdog};

/// Leaves `w` (one per branch) and `v`; two non-scalar roots sharing a trunk of `branches`
/// branches of tanh layers: `y1 = trunk @ v` (`[4, 3]`), `y2 = sin(trunk)` (`[4, 8]`).
fn two_roots(branches: usize) -> (Vec<T64>, [T64; 2]) {
    let x = T64::randn(&[4, 8], 0);
    let mut leaves = Vec::new();
    let mut trunk: Option<T64> = None;
    for b in 0..branches {
        let w = (&T64::randn(&[8, 8], 10 + b as u64) * 0.3).requires_grad();
        let h = x.matmul(&w).unwrap().tanh().matmul(&w).unwrap().tanh();
        leaves.push(w);
        trunk = Some(match trunk {
            Some(t) => &t + &h,
            None => h,
        });
    }
    let trunk = trunk.unwrap();
    let v = (&T64::randn(&[8, 3], 99) * 0.5).requires_grad();
    let y1 = trunk.matmul(&v).unwrap();
    let y2 = trunk.sin();
    leaves.push(v);
    (leaves, [y1, y2])
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 + 1e-10 * w.abs(),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn one_multi_root_pass_equals_the_sum_of_separate_passes() {
    for branches in [2, 12] {
        for opts in configs() {
            let (leaves, [y1, y2]) = two_roots(branches);
            let g1 = T64::randn(y1.shape(), 5);
            let g2 = T64::randn(y2.shape(), 6);
            // Separate passes, through the shared trunk twice.
            let retained = opts.clone().retain_graph(true);
            let sep1 = grad(
                &[&y1],
                &[&g1],
                &leaves.iter().collect::<Vec<_>>(),
                &retained,
            )
            .unwrap();
            let sep2 = grad(
                &[&y2],
                &[&g2],
                &leaves.iter().collect::<Vec<_>>(),
                &retained,
            )
            .unwrap();
            // One pass from both roots.
            let stats = BackwardStats::new();
            backward(&[&y1, &y2], &[&g1, &g2], &opts.clone().stats(stats.clone())).unwrap();
            // Each node runs once: the leaves, 4 ops per branch, branches - 1 adds, y1, y2.
            assert_eq!(
                stats.nodes_run(),
                (branches + 1) + 4 * branches + (branches - 1) + 2
            );
            for (i, leaf) in leaves.iter().enumerate() {
                let want: Vec<f64> = match (&sep1[i], &sep2[i]) {
                    (Some(a), Some(b)) => (a + b).to_vec(),
                    (Some(a), None) => a.to_vec(),
                    (None, Some(b)) => b.to_vec(),
                    (None, None) => unreachable!("every leaf feeds y1"),
                };
                assert_close(
                    &leaf.grad().unwrap().to_vec(),
                    &want,
                    &format!("{opts:?} leaf {i}"),
                );
            }
        }
    }
}

#[test]
fn multi_root_grad_matches_multi_root_backward() {
    for opts in configs() {
        let (leaves, [y1, y2]) = two_roots(12);
        let (g1, g2) = (T64::randn(y1.shape(), 1), T64::randn(y2.shape(), 2));
        let retained = opts.clone().retain_graph(true);
        let g = grad(
            &[&y1, &y2],
            &[&g1, &g2],
            &leaves.iter().collect::<Vec<_>>(),
            &retained,
        )
        .unwrap();
        assert!(leaves.iter().all(|l| l.grad().is_none()));
        backward(&[&y1, &y2], &[&g1, &g2], &opts).unwrap();
        for (got, leaf) in g.iter().zip(&leaves) {
            // Same plan, same canonical order: bitwise equal.
            assert_eq!(
                got.as_ref().unwrap().to_vec(),
                leaf.grad().unwrap().to_vec(),
                "{opts:?}"
            );
        }
    }
}

#[test]
fn scalar_roots_are_seeded_with_ones() {
    // y1 = x², y2 = sin x: one pass gives 2x + cos x.
    for opts in configs() {
        let x = T64::scalar(0.3).requires_grad();
        backward(&[&(&x * &x), &x.sin()], &[], &opts).unwrap();
        assert!((x.grad().unwrap().item() - (0.6 + 0.3f64.cos())).abs() < 1e-15);
    }
}

#[test]
fn mismatched_grad_outputs_are_errors() {
    for opts in configs() {
        let (_, [y1, y2]) = two_roots(2);
        let g1 = T64::randn(y1.shape(), 1);
        let err = backward(&[&y1, &y2], &[&g1], &opts).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        let err = backward(&[&y1, &y2], &[&g1, &g1], &opts).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err:?}");
        assert!(err.to_string().contains("grad_outputs[1]"), "{err}");
    }
}

/// Large enough that a cost quadratic in the number of roots or inputs (tens of billions of
/// steps) cannot finish within the watchdog, small enough that a linear one takes about a
/// second.
const MANY: usize = 200_000;

/// Generous, so that a loaded machine never trips it; linear code takes a second or two.
const SCALE_DEADLINE: u64 = 60;

#[test]
fn backward_from_many_roots_is_linear_in_their_number() {
    // y_i = i * x: one pass from every root gives dx = 0 + 1 + ... + (MANY - 1), exact in f64.
    let grad_x = watchdog("backward from 200,000 roots", SCALE_DEADLINE, || {
        let x = T64::scalar(0.5).requires_grad();
        let roots: Vec<T64> = (0..MANY).map(|i| &x * i as f64).collect();
        let refs: Vec<&T64> = roots.iter().collect();
        backward(&refs, &[], &BackwardOptions::new()).unwrap();
        x.grad().unwrap().item()
    });
    let n = MANY as f64;
    assert_eq!(grad_x, n * (n - 1.0) / 2.0);
}

#[test]
fn grad_with_many_roots_and_inputs_is_linear_in_their_number() {
    // Roots y_i = c_i·x_i, one per input x_i: d(Σ y_i)/dx_i = c_i. A last root that no
    // input depends on is pruned with its seed.
    let got = watchdog("grad with 200,000 roots and inputs", SCALE_DEADLINE, || {
        let xs: Vec<T64> = (0..MANY)
            .map(|i| T64::scalar(i as f64).requires_grad())
            .collect();
        let mut roots: Vec<T64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| x * ((i % 7) as f64 - 3.0))
            .collect();
        roots.push(&T64::scalar(1.0).requires_grad() * 2.0);
        let inputs: Vec<&T64> = xs.iter().collect();
        let outputs: Vec<&T64> = roots.iter().collect();
        let grads = grad(&outputs, &[], &inputs, &BackwardOptions::new()).unwrap();
        grads
            .into_iter()
            .map(|g| g.expect("every input feeds a root").item())
            .collect::<Vec<f64>>()
    });
    assert_eq!(got.len(), MANY);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(*g, (i % 7) as f64 - 3.0, "input {i}");
    }
}
