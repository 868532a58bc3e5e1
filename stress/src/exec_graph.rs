//! The executor-level graph: a random DAG driven through [`backflow_engine::exec::execute`] directly,
//! with a [`TrackedTask`] that records which nodes started and finished and how many
//! contributions each node has been sent, so a hang can be dumped with its counters.
//!
//! Node `i` sends `g·w + sin(g·w)/4` along each edge `(j, w)`, `j > i`; the nodes nothing
//! points at are the roots, seeded with 1. [`ExecGraph::reference`] computes the same
//! gradients with a plain loop, independent of the executor.

use super::recipe::{FaultKind, GraphSpec};
use backflow_engine::exec::{Gradient, Plan, Task};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A scalar gradient; with `drop_later` set it is a deliberately broken accumulation that
/// drops the later contribution (a mutation the oracle must catch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExecGrad {
    /// The value.
    pub value: f64,
    /// The mutation: `accumulate` returns `self` unchanged.
    pub drop_later: bool,
}

impl Gradient for ExecGrad {
    fn accumulate(self, later: Self) -> Self {
        if self.drop_later {
            return self;
        }
        ExecGrad {
            value: self.value + later.value,
            drop_later: later.drop_later,
        }
    }
}

/// A random DAG of scalar nodes with weighted edges from lower to higher ids.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecGraph {
    /// Edges `(target, weight)` of each node, in output order.
    pub succ: Vec<Vec<(u32, f64)>>,
    /// Nodes seeded with 1, repeats allowed.
    pub roots: Vec<u32>,
}

impl ExecGraph {
    /// The graph for `seed`: `spec.nodes` nodes in layers of `spec.width`; each node sends to
    /// 1–3 nodes of the next `window` layers, or to a hub (the last `hubs` nodes) with
    /// probability `hub_share`.
    pub fn generate(seed: u64, spec: &GraphSpec) -> ExecGraph {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xe8ec);
        let n = spec.nodes.max(2);
        let width = spec.width.max(1);
        let hubs = spec.hubs.clamp(1, n - 1);
        let mut succ = vec![Vec::new(); n];
        for (i, out) in succ.iter_mut().enumerate().take(n - 1) {
            for _ in 0..rng.random_range(1..=3) {
                let target = if rng.random_bool(spec.hub_share.clamp(0.0, 1.0)) {
                    n - 1 - rng.random_range(0..hubs)
                } else {
                    let lo = (i / width + 1) * width;
                    let hi = (lo + spec.window.max(1) * width).min(n);
                    if lo < hi {
                        rng.random_range(lo..hi)
                    } else {
                        n - 1
                    }
                };
                out.push((target.max(i + 1) as u32, rng.random_range(-0.9..0.9)));
            }
        }
        let mut has_pred = vec![false; n];
        succ.iter()
            .flatten()
            .for_each(|&(t, _)| has_pred[t as usize] = true);
        let mut roots: Vec<u32> = (0..n as u32).filter(|&i| !has_pred[i as usize]).collect();
        if rng.random_bool(0.2) {
            roots.push(roots[0]);
        }
        ExecGraph { succ, roots }
    }

    /// The contribution node `from` sends along an edge of weight `w` given gradient `g`.
    pub fn edge(g: f64, w: f64) -> f64 {
        g * w + (g * w).sin() * 0.25
    }

    /// Gradients by a plain loop in id order (a topological order), independent of the
    /// executor; `None` where no contribution arrives.
    pub fn reference(&self) -> Vec<Option<f64>> {
        let mut grad: Vec<Option<f64>> = vec![None; self.succ.len()];
        for &r in &self.roots {
            *grad[r as usize].get_or_insert(0.0) += 1.0;
        }
        for i in 0..self.succ.len() {
            let Some(g) = grad[i] else { continue };
            for &(t, w) in &self.succ[i] {
                *grad[t as usize].get_or_insert(0.0) += Self::edge(g, w);
            }
        }
        grad
    }

    /// The plan of this graph and the original id of each dense node.
    pub fn plan(&self) -> (Plan, Vec<u32>) {
        Plan::build(
            &self.roots,
            |&n| n,
            |&n, out| out.extend(self.succ[n as usize].iter().map(|e| e.0)),
            None,
        )
    }
}

/// How a fault at an executor-level node behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExecFault {
    /// Panics or returns `Err`.
    Fail(FaultKind),
    /// Sleeps this long before finishing (a stall, for the watchdog).
    Stall(Duration),
}

/// Runs an [`ExecGraph`] through the executor and records each node's progress.
pub struct TrackedTask {
    /// Dense edges `(target, weight)` per dense node.
    succ: Vec<Vec<(u32, f64)>>,
    /// Original id of each dense node.
    ids: Vec<u32>,
    /// Contributions each dense node waits for (from the plan).
    expected: Vec<u32>,
    /// 0 = not started, 1 = running, 2 = finished.
    state: Vec<AtomicU8>,
    /// Contributions sent to each dense node so far, seeds included.
    sent: Vec<AtomicU32>,
    /// The gradient each dense node received.
    grads: Mutex<Vec<Option<f64>>>,
    /// Faults by dense node.
    faults: Vec<(u32, ExecFault)>,
}

impl TrackedTask {
    /// A task for `graph` under `plan` (from [`ExecGraph::plan`]), with faults at the given
    /// original node ids.
    pub fn new(
        graph: &ExecGraph,
        plan: &Plan,
        ids: Vec<u32>,
        faults: &[(u32, ExecFault)],
    ) -> TrackedTask {
        let mut dense = vec![u32::MAX; graph.succ.len()];
        ids.iter()
            .enumerate()
            .for_each(|(i, &n)| dense[n as usize] = i as u32);
        let succ = ids
            .iter()
            .map(|&n| {
                graph.succ[n as usize]
                    .iter()
                    .map(|&(t, w)| (dense[t as usize], w))
                    .collect()
            })
            .collect();
        let n = ids.len();
        let sent: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
        plan.seeds().iter().for_each(|&s| {
            sent[s as usize].fetch_add(1, Ordering::Relaxed);
        });
        TrackedTask {
            succ,
            expected: (0..n as u32).map(|i| plan.indegree(i)).collect(),
            state: (0..n).map(|_| AtomicU8::new(0)).collect(),
            sent,
            grads: Mutex::new(vec![None; n]),
            faults: faults
                .iter()
                .filter(|f| (f.0 as usize) < dense.len())
                .map(|&(n, f)| (dense[n as usize], f))
                .collect(),
            ids,
        }
    }

    /// The gradient each original node received (`None` where none arrived or it never ran).
    pub fn grads(&self, nodes: usize) -> Vec<Option<f64>> {
        let mut out = vec![None; nodes];
        let grads = self.grads.lock().unwrap_or_else(|e| e.into_inner());
        self.ids
            .iter()
            .zip(grads.iter())
            .for_each(|(&n, &g)| out[n as usize] = g);
        out
    }

    /// The executor's state as this task saw it: counts, then every node that is not
    /// finished, with its contributions sent and expected.
    pub fn dump(&self) -> String {
        let state: Vec<u8> = self
            .state
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .collect();
        let count = |v| state.iter().filter(|&&s| s == v).count();
        let mut out = format!(
            "  nodes {}: {} finished, {} running, {} not started\n",
            state.len(),
            count(2),
            count(1),
            count(0)
        );
        for (i, &s) in state.iter().enumerate().filter(|(_, &s)| s != 2) {
            let what = if s == 1 { "running" } else { "pending" };
            let sent = self.sent[i].load(Ordering::Acquire);
            out += &format!(
                "  node {} ({what}): {sent}/{} contributions sent\n",
                self.ids[i], self.expected[i]
            );
        }
        out
    }
}

impl Task for TrackedTask {
    type Grad = ExecGrad;

    fn run(
        &self,
        node: u32,
        grad: Option<ExecGrad>,
        out: &mut Vec<Option<ExecGrad>>,
    ) -> Result<(), String> {
        let i = node as usize;
        self.state[i].store(1, Ordering::Release);
        for &(at, fault) in &self.faults {
            match fault {
                _ if at != node => {}
                ExecFault::Fail(FaultKind::Panic) => {
                    panic!("{}: panic at node {}", super::build::INJECTED, self.ids[i])
                }
                ExecFault::Fail(FaultKind::Error) => {
                    return Err(format!(
                        "{}: error at node {}",
                        super::build::INJECTED,
                        self.ids[i]
                    ))
                }
                ExecFault::Stall(d) => std::thread::sleep(d),
            }
        }
        self.grads.lock().unwrap_or_else(|e| e.into_inner())[i] = grad.map(|g| g.value);
        for &(t, w) in &self.succ[i] {
            out.push(grad.map(|g| ExecGrad {
                value: ExecGraph::edge(g.value, w),
                drop_later: g.drop_later,
            }));
            self.sent[t as usize].fetch_add(1, Ordering::AcqRel);
        }
        self.state[i].store(2, Ordering::Release);
        Ok(())
    }

    fn describe(&self, node: u32) -> String {
        format!("exec node {}", self.ids[node as usize])
    }
}
