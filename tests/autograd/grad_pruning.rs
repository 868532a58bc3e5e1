//! `backflow::grad` runs only the nodes with a path to a requested input (counted through
//! `BackwardOptions::stats`), returns the same gradients as a full pass, and leaves every
//! `.grad()` untouched. Under every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{grad, BackwardStats, Tensor};

use crate::common::configs;

#[test]
fn only_the_path_to_the_input_runs() {
    // L = sin¹⁰(x) + cos²⁰(y): asking for x runs add, the 10 sins and x: 12 nodes; a
    // full backward runs 1 + 10 + 1 + 20 + 1 = 33.
    for opts in configs() {
        let x = Tensor::<f64>::scalar(0.7).requires_grad();
        let y = Tensor::<f64>::scalar(0.1).requires_grad();
        let mut a = x.clone();
        for _ in 0..10 {
            a = a.sin();
        }
        let mut b = y.clone();
        for _ in 0..20 {
            b = b.cos();
        }
        let loss = &a + &b;
        let stats = BackwardStats::new();
        let counted = opts.clone().stats(stats.clone()).retain_graph(true);
        let g = grad(&[&loss], &[], &[&x], &counted).unwrap();
        assert_eq!(stats.nodes_run(), 12, "{opts:?}");
        assert!(
            x.grad().is_none() && y.grad().is_none(),
            "grad() must not touch .grad()"
        );

        stats.reset();
        loss.backward_with(&counted).unwrap();
        assert_eq!(stats.nodes_run(), 33, "{opts:?}");
        assert_eq!(
            g[0].as_ref().unwrap().item(),
            x.grad().unwrap().item(),
            "{opts:?}"
        );
    }
}

/// `branches` branches of `depth` layers `h = tanh(h @ W_bl)` on a shared constant `x`,
/// `L = (((s_0 + s_1) + s_2) + …)` with `s_b = h_b.sum()`. Returns the weights by branch.
fn wide(branches: usize, depth: usize) -> (Vec<Vec<Tensor>>, Tensor) {
    let x = Tensor::randn(&[4, 8], 0);
    let mut weights = Vec::new();
    let mut loss: Option<Tensor> = None;
    for b in 0..branches {
        let mut h = x.clone();
        let mut ws = Vec::new();
        for l in 0..depth {
            let w =
                (&Tensor::<f32>::randn(&[8, 8], (1 + b * depth + l) as u64) * 0.3).requires_grad();
            h = h.matmul(&w).unwrap().tanh();
            ws.push(w);
        }
        weights.push(ws);
        let s = h.sum();
        loss = Some(match loss {
            Some(acc) => &acc + &s,
            None => s,
        });
    }
    (weights, loss.unwrap())
}

#[test]
fn a_wide_graph_runs_only_the_requested_branches() {
    const BRANCHES: usize = 32;
    const DEPTH: usize = 4;
    const ASKED: usize = 16;
    // Asking for the first-layer weights of branches 0..16 runs the 31 adds, and in each
    // asked branch its sum, 4 tanh, 4 matmul and the one weight: 31 + 16·10 = 191 nodes.
    // A full pass also runs the other 16 branches and every weight: 31 + 32·13 = 447.
    for opts in configs() {
        let (weights, loss) = wide(BRANCHES, DEPTH);
        let inputs: Vec<Tensor> = weights[..ASKED].iter().map(|ws| ws[0].clone()).collect();
        let stats = BackwardStats::new();
        let counted = opts.clone().stats(stats.clone()).retain_graph(true);
        let g = grad(&[&loss], &[], &inputs.iter().collect::<Vec<_>>(), &counted).unwrap();
        assert_eq!(
            stats.nodes_run(),
            (BRANCHES - 1) + ASKED * (1 + 2 * DEPTH + 1),
            "{opts:?}"
        );
        assert!(
            weights.iter().flatten().all(|w| w.grad().is_none()),
            "{opts:?}"
        );

        stats.reset();
        loss.backward_with(&counted).unwrap();
        assert_eq!(
            stats.nodes_run(),
            (BRANCHES - 1) + BRANCHES * (1 + 3 * DEPTH),
            "{opts:?}"
        );
        for (got, w) in g.iter().zip(&inputs) {
            assert_eq!(
                got.as_ref().unwrap().to_vec(),
                w.grad().unwrap().to_vec(),
                "{opts:?}"
            );
        }
    }
}

#[test]
fn an_input_the_outputs_do_not_depend_on_gets_none_and_runs_nothing() {
    for opts in configs() {
        let x = Tensor::<f32>::scalar(1.0).requires_grad();
        let unrelated = Tensor::<f32>::scalar(2.0).requires_grad();
        let loss = x.exp();
        let stats = BackwardStats::new();
        let g = grad(
            &[&loss],
            &[],
            &[&unrelated],
            &opts.clone().stats(stats.clone()),
        )
        .unwrap();
        assert!(g[0].is_none(), "{opts:?}");
        assert_eq!(stats.nodes_run(), 0, "{opts:?}");
        assert!(x.grad().is_none() && unrelated.grad().is_none());
    }
}

#[test]
fn stats_add_up_over_passes_and_reset() {
    let stats = BackwardStats::new();
    for opts in configs() {
        let x = Tensor::<f32>::scalar(1.0).requires_grad();
        let y = x.sin().cos(); // cos, sin, x: 3 nodes
        y.backward_with(&opts.clone().stats(stats.clone())).unwrap();
    }
    assert_eq!(stats.nodes_run(), 3 * configs().len());
    stats.reset();
    assert_eq!(stats.nodes_run(), 0);
}
