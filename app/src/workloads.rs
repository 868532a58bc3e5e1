//! The standard workloads W1–W4 (`benches/WORKLOADS.md`), built once and differentiated
//! many times: the benches, `backflow scale` and the peer comparison all time the same
//! graphs.
//!
//! Each builder returns a [`Workload`]: the leaves, the loss, and the number of graph
//! nodes the backward pass visits (for ns/node and criterion's throughput). Time the
//! backward pass alone with [`Workload::time_backward`], which keeps the graph
//! (`retain_graph`) and clears the leaves' gradients outside the timer.
//!
//! ```
//! use backflow_app::workloads;
//! use backflow::{BackwardOptions, Scheduler};
//! let w = workloads::chain(1_000);
//! assert_eq!(w.nodes, 1_002);
//! let opts = BackwardOptions::new().scheduler(Scheduler::Kahn);
//! let elapsed = w.time_backward(&opts).unwrap();
//! assert!(elapsed.as_nanos() > 0);
//! ```

use backflow::{BackwardOptions, Result, Tensor};
use std::time::{Duration, Instant};

/// A built graph ready to be differentiated again and again.
pub struct Workload {
    /// Short name, `w1` … `w4`.
    pub name: &'static str,
    /// The tensors that require grad; their gradients are cleared between runs.
    pub leaves: Vec<Tensor>,
    /// The one-element loss to differentiate.
    pub loss: Tensor,
    /// Graph nodes the backward pass visits: leaves, ops and the loss.
    pub nodes: usize,
}

impl Workload {
    /// Runs one backward pass with `opts` (the graph is always retained) and returns its
    /// wall time; the leaves' gradients are cleared afterwards, outside the timer.
    pub fn time_backward(&self, opts: &BackwardOptions) -> Result<Duration> {
        let opts = opts.clone().retain_graph(true);
        let start = Instant::now();
        self.loss.backward_with(&opts)?;
        let elapsed = start.elapsed();
        self.zero_grad();
        Ok(elapsed)
    }

    /// Clears every leaf's gradient.
    pub fn zero_grad(&self) {
        for leaf in &self.leaves {
            leaf.zero_grad();
        }
    }
}

/// The workloads by id, as `--workload` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadId {
    /// W1: a 100,000-op chain of scalar ops (per-node overhead).
    W1,
    /// W2: 64 branches × 8 layers of `tanh(h @ W)` (inter-branch parallelism).
    W2,
    /// W3: 10,000 consumers of one `[64]` tensor (fan-in contention).
    W3,
    /// W4: the W1 chain with 1,000,000 ops (depth, memory).
    W4,
    /// W6: 1,000 branches of 100 scalar ops (parallelism between nodes of tens of ns).
    W6,
}

impl WorkloadId {
    /// Every workload, in order.
    pub const ALL: [WorkloadId; 5] = [
        WorkloadId::W1,
        WorkloadId::W2,
        WorkloadId::W3,
        WorkloadId::W4,
        WorkloadId::W6,
    ];

    /// Lower-case id: `w1` … `w4`, `w6`.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadId::W1 => "w1",
            WorkloadId::W2 => "w2",
            WorkloadId::W3 => "w3",
            WorkloadId::W4 => "w4",
            WorkloadId::W6 => "w6",
        }
    }

    /// Parses `w1` … `w4`, `w6` (case-insensitive).
    pub fn parse(s: &str) -> Option<WorkloadId> {
        WorkloadId::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Builds the workload with its standard sizes.
    pub fn build(self) -> Result<Workload> {
        Ok(match self {
            WorkloadId::W1 => chain(W1_OPS),
            WorkloadId::W2 => wide(64, 8, 128, 32, 0)?,
            WorkloadId::W3 => fan_in(10_000, 64),
            WorkloadId::W4 => deep(),
            WorkloadId::W6 => fine_wide(W6_BRANCHES, W6_STEPS),
        })
    }
}

/// Ops in the W1 chain.
pub const W1_OPS: usize = 100_000;
/// Ops in the W4 chain.
pub const W4_OPS: usize = 1_000_000;

/// W1: `x = ones([1])`; `n` ops, `y * 1.0001` at odd steps and `y + 0.5` at even steps;
/// `L = y.sum()`. Visits `n + 2` nodes.
pub fn chain(n: usize) -> Workload {
    let x = Tensor::ones(&[1]).requires_grad();
    let mut y = x.clone();
    for i in 0..n {
        y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
    }
    Workload {
        name: if n == W4_OPS { "w4" } else { "w1" },
        leaves: vec![x],
        loss: y.sum(),
        nodes: n + 2,
    }
}

/// W4: the W1 chain with 1,000,000 ops.
pub fn deep() -> Workload {
    chain(W4_OPS)
}

/// Branches of W6.
pub const W6_BRANCHES: usize = 1_000;
/// Ops per branch of W6.
pub const W6_STEPS: usize = 100;

/// W6, fine-grained wide: `x = ones([1])`, requires grad; branch `b` of `branches` starts at
/// `x * (1 + b/branches)` and applies `steps` ops, `* 1.0001` at odd steps and `+ 0.5` at
/// even ones; `L` is the balanced-tree sum of the branch ends. Visits
/// `branches·(steps + 2)` nodes (the leaf, each branch's start and ops, and the adds).
pub fn fine_wide(branches: usize, steps: usize) -> Workload {
    let x = Tensor::ones(&[1]).requires_grad();
    let ends = (0..branches)
        .map(|b| {
            let mut y = &x * (1.0 + b as f32 / branches as f32);
            for i in 0..steps {
                y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
            }
            y
        })
        .collect();
    Workload {
        name: "w6",
        leaves: vec![x],
        loss: tree_sum(ends),
        nodes: branches * (steps + 2),
    }
}

/// W2: `x` is `[batch, hidden]` (randn, shared by every branch, no grad); each of
/// `branches` branches applies `depth` layers of `h = tanh(h @ W)` with its own
/// `W = randn([hidden, hidden]) / √hidden`; `L = Σ_b h_b.sum()`, summed as a balanced
/// tree of adds. Visits `3·branches·depth + 2·branches − 1` nodes.
pub fn wide(
    branches: usize,
    depth: usize,
    hidden: usize,
    batch: usize,
    seed: u64,
) -> Result<Workload> {
    let x = Tensor::randn(&[batch, hidden], seed);
    let scale = 1.0 / (hidden as f32).sqrt();
    let mut leaves = Vec::with_capacity(branches * depth);
    let mut sums = Vec::with_capacity(branches);
    for b in 0..branches {
        let mut h = x.clone();
        for l in 0..depth {
            let weight_seed = seed.wrapping_add(1 + (b * depth + l) as u64);
            let raw = Tensor::<f32>::randn(&[hidden, hidden], weight_seed);
            let w = Tensor::from_vec(
                raw.data().iter().map(|v| v * scale).collect(),
                &[hidden, hidden],
            )?
            .requires_grad();
            h = h.matmul(&w)?.tanh();
            leaves.push(w);
        }
        sums.push(h.sum());
    }
    let loss = tree_sum(sums);
    Ok(Workload {
        name: "w2",
        leaves,
        loss,
        nodes: 3 * branches * depth + 2 * branches - 1,
    })
}

/// W3: `t2` is `[n]` (randn), requires grad; `consumers` terms `(t2 * k).sin().sum()` for
/// `k = 0, 1, …`, summed as a balanced tree of adds. Visits `4·consumers` nodes.
pub fn fan_in(consumers: usize, n: usize) -> Workload {
    let t2 = Tensor::randn(&[n], 0).requires_grad();
    let terms = (0..consumers)
        .map(|k| (&t2 * k as f32).sin().sum())
        .collect();
    Workload {
        name: "w3",
        leaves: vec![t2],
        loss: tree_sum(terms),
        nodes: 4 * consumers,
    }
}

/// Sums one-element tensors pairwise, so the adds form a tree of logarithmic depth
/// (`len − 1` add nodes).
fn tree_sum(mut terms: Vec<Tensor>) -> Tensor {
    assert!(!terms.is_empty(), "tree_sum of nothing");
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut it = terms.chunks(2);
        for pair in &mut it {
            next.push(match pair {
                [a, b] => a + b,
                [a] => a.clone(),
                _ => unreachable!("chunks(2)"),
            });
        }
        terms = next;
    }
    terms.pop().expect("one term left")
}

/// W5, the seed graph: `t3 = t1 + t2`, `t4 = t2·t5`, `t6 = t3·t4`, `t7 = sin(t6)` (the loss),
/// with `t1 = 2`, `t2 = 3`, `t5 = 0.5`. Its gradients are `cos(7.5)·1.5`, `cos(7.5)·4` and
/// `cos(7.5)·15`.
pub struct SeedGraph {
    /// The leaves `t1`, `t2`, `t5`, then `t3`, `t4`, `t6` and the loss `t7`.
    pub t: [Tensor; 7],
}

impl SeedGraph {
    /// Each tensor with its name in the seed document, `t1` … `t7` in that order.
    pub fn named(&self) -> impl Iterator<Item = (&Tensor, &'static str)> {
        let [t1, t2, t5, t3, t4, t6, t7] = &self.t;
        [
            (t1, "t1"),
            (t2, "t2"),
            (t3, "t3"),
            (t4, "t4"),
            (t5, "t5"),
            (t6, "t6"),
            (t7, "t7"),
        ]
        .into_iter()
    }

    /// The loss `t7`.
    pub fn loss(&self) -> &Tensor {
        &self.t[6]
    }
}

/// Builds [`SeedGraph`].
pub fn seed_graph() -> SeedGraph {
    let t1 = Tensor::scalar(2.0).requires_grad();
    let t2 = Tensor::scalar(3.0).requires_grad();
    let t5 = Tensor::scalar(0.5).requires_grad();
    let t3 = &t1 + &t2;
    let t4 = &t2 * &t5;
    let t6 = &t3 * &t4;
    let t7 = t6.sin();
    SeedGraph {
        t: [t1, t2, t5, t3, t4, t6, t7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backflow::Scheduler;

    #[test]
    fn gradients_agree_across_schedulers_and_repeat() {
        let w = wide(4, 2, 8, 3, 7).unwrap();
        let grads = |s: Scheduler| {
            w.loss
                .backward_with(
                    &BackwardOptions::new()
                        .scheduler(s)
                        .threads(2)
                        .retain_graph(true),
                )
                .unwrap();
            let g: Vec<Vec<f32>> = w
                .leaves
                .iter()
                .map(|l| l.grad().unwrap().to_vec())
                .collect();
            w.zero_grad();
            g
        };
        let reference = grads(Scheduler::Dfs);
        for s in Scheduler::ALL {
            assert_eq!(grads(s), reference, "{s:?}");
        }
    }

    #[test]
    fn fan_in_gradient_is_closed_form() {
        let w = fan_in(5, 3);
        w.time_backward(&BackwardOptions::new()).unwrap();
        w.time_backward(&BackwardOptions::new()).unwrap();
        w.loss
            .backward_with(&BackwardOptions::new().retain_graph(true))
            .unwrap();
        // d/dt Σ_k sin(k·t) = Σ_k k·cos(k·t)
        let t = w.leaves[0].to_vec();
        let g = w.leaves[0].grad().unwrap().to_vec();
        for (t, g) in t.iter().zip(g) {
            let want: f32 = (0..5).map(|k| k as f32 * (k as f32 * t).cos()).sum();
            assert!((g - want).abs() < 1e-4, "{g} vs {want}");
        }
    }

    #[test]
    fn fine_wide_gradient_is_closed_form() {
        // Each branch is an affine map of x with slope (1 + b/n)·1.0001^(steps/2).
        let (n, steps) = (7, 6);
        let w = fine_wide(n, steps);
        for s in Scheduler::ALL {
            let opts = BackwardOptions::new().scheduler(s).threads(2);
            w.time_backward(&opts).unwrap();
        }
        w.loss
            .backward_with(&BackwardOptions::new().retain_graph(true))
            .unwrap();
        let want: f64 = (0..n)
            .map(|b| (1.0 + b as f64 / n as f64) * 1.0001f64.powi(steps as i32 / 2))
            .sum();
        let got = f64::from(w.leaves[0].grad().unwrap().item());
        assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
    }

    #[test]
    fn parse_names() {
        assert_eq!(WorkloadId::parse("W3"), Some(WorkloadId::W3));
        assert_eq!(WorkloadId::parse("w9"), None);
    }
}
