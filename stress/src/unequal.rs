//! Concurrent independent callers with unequal branch costs.
//!
//! Caller A differentiates a recipe graph with one slow branch: an identity custom op (the
//! *gate*) whose backward tells caller B it has started and then blocks until B signals that
//! it has finished, or until a deadline passes (a channel's `recv_timeout`). Caller B, on
//! its own thread, waits for that start signal, then runs several small independent passes
//! over graphs of its own at the same configuration (`threads(n)`), checks each against its
//! reference, and signals. So B must complete every pass while A's slow branch still blocks
//! a thread of A's pass: that is progress, not timing. If B has not finished when A's
//! deadline passes, the check fails with "caller B made no progress while A's branch ran".
//! A's gradients must equal A's reference, B's each theirs (bitwise in `Deterministic`
//! mode, within [`fast_tolerance`] in `Fast`); the references are taken once, sequentially,
//! with `Dfs` and the gate open.

use super::build::TensorGraph;
use super::oracle::{compare, fast_tolerance, run_once, LeafGrads, RunConfig};
use super::recipe::{GraphSpec, Recipe};
use super::watchdog::Watch;
use backflow::{Accumulation, BackwardCtx, CustomOp, Result, Scheduler, Tensor};
use backflow_kernels::Element;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The op name of caller A's slow branch.
pub const GATE_OP: &str = "stress_gate";

/// The failure reported when caller B cannot finish before caller A's deadline.
pub const NO_PROGRESS: &str = "caller B made no progress while A's branch ran";

/// A deliberate violation, to see the check report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnequalMutation {
    /// No violation.
    #[default]
    None,
    /// Caller B starts its passes only after caller A's pass has returned, so it cannot
    /// finish while A's branch blocks: the progress condition fails by construction.
    BWaitsForA,
}

/// What an unequal-callers check found.
#[derive(Debug, Default)]
pub struct UnequalCheck {
    /// Indices into the configuration list of caller A's runs (one per configuration of the
    /// `Parallel` scheduler).
    pub runs: Vec<usize>,
    /// Passes caller B completed while A's branch blocked.
    pub b_passes: u64,
    /// `(configuration index, description)` of each failure; `usize::MAX` for problems
    /// outside a run (build, references).
    pub failures: Vec<(usize, String)>,
}

/// The channels of one run between the gate and caller B.
struct GateRun {
    started: Sender<()>,
    finished: Receiver<()>,
}

/// `y = x`, whose backward blocks until caller B has finished (or the deadline passes).
struct Gate {
    run: Arc<Mutex<Option<GateRun>>>,
    deadline: Duration,
    failures: Arc<Mutex<Vec<String>>>,
    b_passes: usize,
}

impl<T: Element> CustomOp<T> for Gate {
    fn name(&self) -> &'static str {
        GATE_OP
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        _inputs: &[Tensor<T>],
        _output: &Tensor<T>,
        grad: &Tensor<T>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        // Without a run armed (the reference) the gate is open.
        let run = self.run.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(run) = run {
            let _ = run.started.send(());
            let problem = match run.finished.recv_timeout(self.deadline) {
                Ok(()) => None,
                Err(RecvTimeoutError::Timeout) => Some(format!(
                    "{NO_PROGRESS} (its {} passes were not done {:?} after A's branch started)",
                    self.b_passes, self.deadline
                )),
                Err(RecvTimeoutError::Disconnected) => {
                    Some("caller B stopped without finishing its passes".to_string())
                }
            };
            if let Some(p) = problem {
                self.failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(p);
            }
        }
        Ok(vec![Some(grad.clone())])
    }
}

/// Caller B's graph and reference.
struct Small<T: Element> {
    graph: TensorGraph<T>,
    reference: LeafGrads,
    tol: f64,
}

fn reference<T: Element>(g: &TensorGraph<T>) -> std::result::Result<LeafGrads, String> {
    let r = run_once(g, &RunConfig::reference(), true, true)
        .map_err(|e| format!("reference run failed: {e}"))?;
    if r.iter().flatten().flatten().all(|v| v.is_finite()) {
        Ok(r)
    } else {
        Err("reference gradient is not finite".into())
    }
}

fn tolerance(cfg: &RunConfig, tol: f64) -> Option<f64> {
    match cfg.accumulation {
        Accumulation::Deterministic => None,
        Accumulation::Fast => Some(tol),
    }
}

/// Checks caller A (a recipe of `spec` from `seed`, gated after a random op) against caller
/// B (`b_graphs` small recipes from derived seeds) under every `Parallel` configuration of
/// `configs`. The gate waits at most `deadline` for B; the whole run is watched by `watch`.
#[allow(clippy::too_many_arguments)]
pub fn check_unequal<T: Element>(
    seed: u64,
    spec: &GraphSpec,
    b_graphs: usize,
    configs: &[RunConfig],
    eps: f64,
    deadline: Duration,
    mutation: UnequalMutation,
    watch: &Watch,
) -> UnequalCheck {
    let mut check = UnequalCheck::default();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0e9a_1ca1_1e00_0002);
    let slot: Arc<Mutex<Option<GateRun>>> = Arc::new(Mutex::new(None));
    let failures: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let a_recipe = Recipe::generate(seed.wrapping_add(0xa000_0000), spec);
    let gate_at = rng.random_range(0..a_recipe.ops.len().max(1));
    let a_leaves: Vec<Tensor<T>> = a_recipe
        .leaf_values()
        .into_iter()
        .map(Tensor::requires_grad)
        .collect();
    let a = a_recipe.build_with(&a_leaves, &mut |i, t| {
        if i == gate_at {
            let gate = Gate {
                run: Arc::clone(&slot),
                deadline,
                failures: Arc::clone(&failures),
                b_passes: b_graphs,
            };
            Tensor::apply_op(gate, &[&t])
        } else {
            Ok(t)
        }
    });
    let small_spec = GraphSpec {
        nodes: (spec.nodes / 4).max(8),
        ..spec.clone()
    };
    let smalls: std::result::Result<Vec<Small<T>>, String> = (0..b_graphs)
        .map(|k| {
            let r = Recipe::generate(
                seed.wrapping_add(0xb000_0000 + 0x100 * k as u64),
                &small_spec,
            );
            let graph = r
                .build::<T>()
                .map_err(|e| format!("B graph {k}: build failed: {e}"))?;
            let reference = reference(&graph).map_err(|e| format!("B graph {k}: {e}"))?;
            let tol = fast_tolerance(eps, r.depth(), r.max_fan_in());
            Ok(Small {
                graph,
                reference,
                tol,
            })
        })
        .collect();
    let (a, smalls) = match (a, smalls) {
        (Ok(a), Ok(s)) => (a, s),
        (Err(e), _) => {
            check
                .failures
                .push((usize::MAX, format!("A graph: build failed: {e}")));
            return check;
        }
        (_, Err(e)) => {
            check.failures.push((usize::MAX, e));
            return check;
        }
    };
    let a_ref = match reference(&a) {
        Ok(r) => r,
        Err(e) => {
            check.failures.push((usize::MAX, format!("A graph: {e}")));
            return check;
        }
    };
    let a_tol = fast_tolerance(eps, a_recipe.depth(), a_recipe.max_fan_in());
    for (i, cfg) in configs.iter().enumerate() {
        if cfg.scheduler != Scheduler::Parallel {
            continue;
        }
        let (started_tx, started_rx) = channel();
        let (finished_tx, finished_rx) = channel();
        let (a_done_tx, a_done_rx) = channel::<()>();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(GateRun {
            started: started_tx,
            finished: finished_rx,
        });
        let (a_result, b_result) = watch.run(
            || format!("seed {seed} unequal callers (A gated, B {b_graphs} passes) {cfg}"),
            None,
            || {
                std::thread::scope(|s| {
                    let a_thread = s.spawn(|| {
                        let r = run_once(&a, cfg, i % 2 == 0, true);
                        drop(a_done_tx);
                        r
                    });
                    let smalls = &smalls;
                    let b_thread = s.spawn(move || -> std::result::Result<u64, String> {
                        if started_rx.recv_timeout(deadline).is_err() {
                            return Err(format!(
                                "caller A's slow branch did not start within {deadline:?}"
                            ));
                        }
                        if mutation == UnequalMutation::BWaitsForA {
                            // Blocks until A's pass has returned (its sender dropped).
                            let _ = a_done_rx.recv();
                        }
                        let mut done = 0;
                        for (k, small) in smalls.iter().enumerate() {
                            let got = run_once(&small.graph, cfg, true, true)
                                .map_err(|e| format!("caller B pass {k} failed: {e}"))?;
                            if let Some(p) =
                                compare(&got, &small.reference, tolerance(cfg, small.tol))
                            {
                                return Err(format!("caller B pass {k}: {p}"));
                            }
                            done += 1;
                        }
                        let _ = finished_tx.send(());
                        Ok(done)
                    });
                    let a = a_thread.join().unwrap_or_else(|_| {
                        Err(backflow::Error::Invalid {
                            op: GATE_OP,
                            message: "caller A panicked".into(),
                        })
                    });
                    let b = b_thread
                        .join()
                        .unwrap_or_else(|_| Err("caller B panicked".into()));
                    (a, b)
                })
            },
        );
        // The gate never ran (a failed pass): disarm it for the next configuration.
        slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        check.runs.push(i);
        match a_result {
            Err(e) => check.failures.push((i, format!("caller A failed: {e}"))),
            Ok(got) => {
                if let Some(p) = compare(&got, &a_ref, tolerance(cfg, a_tol)) {
                    check.failures.push((i, format!("caller A: {p}")));
                }
            }
        }
        match b_result {
            Ok(n) => check.b_passes += n,
            Err(e) => check.failures.push((i, e)),
        }
        let gate_failures =
            std::mem::take(&mut *failures.lock().unwrap_or_else(|e| e.into_inner()));
        check
            .failures
            .extend(gate_failures.into_iter().map(|m| (i, m)));
    }
    check
}
