//! `retain_graph`: without it a pass frees the saved tensors as nodes run, and a second
//! backward through the same graph is an `Err` that says to pass `retain_graph`; with it, a
//! second backward sums into `.grad()` again (doubling it). Under every scheduler, `Parallel`
//! at 2 and 4 threads.

use backflow::{Error, Tensor};

use crate::common::configs;

/// `branches` branches of `depth` layers `h = tanh(h @ W)` on a shared `x`, summed: enough
/// nodes (more than 64) for `Parallel` to use its workers.
fn wide(branches: usize, depth: usize) -> (Vec<Tensor>, Tensor) {
    let x = Tensor::randn(&[4, 8], 0);
    let mut leaves = Vec::new();
    let mut loss: Option<Tensor> = None;
    for b in 0..branches {
        let mut h = x.clone();
        for l in 0..depth {
            let w = Tensor::<f32>::randn(&[8, 8], (1 + b * depth + l) as u64);
            let w = (&w * 0.3).requires_grad();
            h = h.matmul(&w).unwrap().tanh();
            leaves.push(w);
        }
        let s = h.sum();
        loss = Some(match loss {
            Some(acc) => &acc + &s,
            None => s,
        });
    }
    (leaves, loss.unwrap())
}

/// The seed graph W5: leaves t1, t2, t5 and L = sin((t1 + t2) · (t2 · t5)).
fn seed() -> (Vec<Tensor>, Tensor) {
    let t1 = Tensor::scalar(2.0).requires_grad();
    let t2 = Tensor::scalar(3.0).requires_grad();
    let t5 = Tensor::scalar(0.5).requires_grad();
    let l = ((&t1 + &t2) * (&t2 * &t5)).sin();
    (vec![t1, t2, t5], l)
}

fn grads(leaves: &[Tensor]) -> Vec<Vec<f32>> {
    leaves
        .iter()
        .map(|l| l.grad().expect("leaf has a gradient").to_vec())
        .collect()
}

#[test]
fn second_backward_without_retain_graph_is_an_error_naming_retain_graph() {
    for opts in configs() {
        for (leaves, loss) in [seed(), wide(16, 3)] {
            loss.backward_with(&opts).unwrap();
            let first = grads(&leaves);
            let err = loss.backward_with(&opts).unwrap_err();
            assert!(matches!(err, Error::GraphFreed { .. }), "{opts:?}: {err:?}");
            assert!(err.to_string().contains("retain_graph"), "{opts:?}: {err}");
            // The failed pass added nothing.
            assert_eq!(grads(&leaves), first, "{opts:?}");
        }
    }
}

#[test]
fn second_backward_with_retain_graph_doubles_the_gradients() {
    for opts in configs() {
        for (leaves, loss) in [seed(), wide(16, 3)] {
            let retained = opts.clone().retain_graph(true);
            loss.backward_with(&retained).unwrap();
            let once = grads(&leaves);
            loss.backward_with(&retained).unwrap();
            let twice = grads(&leaves);
            for (a, b) in once.iter().zip(&twice) {
                let doubled: Vec<f32> = a.iter().map(|v| v + v).collect();
                assert_eq!(b, &doubled, "{opts:?}");
            }
            // A last pass without retain_graph still works, then frees the graph.
            loss.backward_with(&opts).unwrap();
            assert!(loss.backward_with(&opts).is_err(), "{opts:?}");
        }
    }
}

#[test]
fn the_seed_gradients_match_the_closed_form_on_both_passes() {
    // L = sin(t6), t6 = (t1 + t2)·t2·t5 = 7.5: dL/dt1 = cos(7.5)·1.5, dL/dt2 = cos(7.5)·4,
    // dL/dt5 = cos(7.5)·15.
    let c = 7.5f32.cos();
    for opts in configs() {
        let (leaves, loss) = seed();
        let retained = opts.clone().retain_graph(true);
        for pass in 1..=2 {
            loss.backward_with(&retained).unwrap();
            let k = pass as f32;
            for (leaf, want) in leaves.iter().zip([1.5, 4.0, 15.0]) {
                let got = leaf.grad().unwrap().item();
                assert!(
                    (got - k * c * want).abs() < 1e-4,
                    "{opts:?} pass {pass}: {got}"
                );
            }
        }
    }
}

#[test]
fn a_freed_graph_leaves_the_engine_usable() {
    for opts in configs() {
        let (_, loss) = wide(16, 3);
        loss.backward_with(&opts).unwrap();
        assert!(loss.backward_with(&opts).is_err());
        let (leaves, fresh) = wide(16, 3);
        fresh.backward_with(&opts).unwrap();
        assert!(leaves.iter().all(|l| l.grad().is_some()), "{opts:?}");
    }
}
