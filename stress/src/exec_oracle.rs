//! The differential oracle over executor-level graphs ([`ExecGraph`]).
//!
//! Each configuration runs the graph through [`execute`] with a [`TrackedTask`], under the
//! watchdog with the task's counters as the hang dump. `Deterministic` runs must match the
//! first one bitwise; every run must match the executor-independent
//! [`ExecGraph::reference`] within a relative 1e-9, which is what catches a broken
//! accumulation that all schedulers share (such as [`ExecGrad::drop_later`]). With faults,
//! every run must return the injected `Err` and the clean graph must pass right after.

use super::exec_graph::{ExecFault, ExecGrad, ExecGraph, TrackedTask};
use super::faults::quiet_injected_panics;
use super::oracle::RunConfig;
use super::recipe::{FaultKind, GraphSpec};
use super::watchdog::{Dump, Watch};
use backflow::Accumulation;
use backflow_engine::exec::{execute, ExecError, ExecOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Relative tolerance against the plain-loop reference (f64, reordered sums).
pub const REFERENCE_TOLERANCE: f64 = 1e-9;

/// What checking one executor-level graph found.
#[derive(Debug, Default)]
pub struct ExecCheck {
    /// Indices into the configuration list of the runs made.
    pub runs: Vec<usize>,
    /// `(configuration index, description)` of each mismatch.
    pub mismatches: Vec<(usize, String)>,
    /// Nodes in the plan.
    pub nodes: usize,
    /// Runs with injected faults.
    pub injected: u64,
    /// Of those, runs that returned the injected `Err`.
    pub caught: u64,
}

/// Runs `graph` once under `cfg`, with `faults`; the gradients by original id.
pub fn run_exec(
    graph: &ExecGraph,
    cfg: &RunConfig,
    faults: &[(u32, ExecFault)],
    drop_later: bool,
    watch: &Watch,
    label: &str,
) -> Result<Vec<Option<f64>>, ExecError> {
    let (plan, ids) = graph.plan();
    let task = Arc::new(TrackedTask::new(graph, &plan, ids, faults));
    let seeds = plan
        .seeds()
        .iter()
        .map(|_| {
            Some(ExecGrad {
                value: 1.0,
                drop_later,
            })
        })
        .collect();
    let opts = ExecOptions {
        scheduler: cfg.scheduler,
        threads: cfg.threads,
        accumulation: cfg.accumulation,
    };
    let probe = Arc::clone(&task);
    let dump: Dump = Arc::new(move || probe.dump());
    watch.run(
        || format!("{label} {cfg}"),
        Some(dump),
        || execute(Arc::new(plan), Arc::clone(&task), seeds, &opts),
    )?;
    Ok(task.grads(graph.succ.len()))
}

/// Compares gradients bitwise (`tol` `None`) or within `tol` times the largest magnitude.
fn differ(got: &[Option<f64>], want: &[Option<f64>], tol: Option<f64>) -> Option<String> {
    let scale = want
        .iter()
        .flatten()
        .fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    got.iter().zip(want).enumerate().find_map(|(i, (a, b))| {
        let bad = match (a, b, tol) {
            (Some(a), Some(b), None) => a.to_bits() != b.to_bits(),
            // NaN counts as a difference.
            (Some(a), Some(b), Some(t)) => (a - b).abs() > t * scale || (a - b).is_nan(),
            (None, None, _) => false,
            _ => true,
        };
        bad.then(|| format!("node {i}: {a:?} vs {b:?}"))
    })
}

/// Checks the graph of `seed` under every configuration; with `faults > 0`, also that many
/// injected faults at random nodes; with `drop_later`, the broken accumulation.
pub fn check_exec(
    seed: u64,
    spec: &GraphSpec,
    configs: &[RunConfig],
    faults: usize,
    drop_later: bool,
    watch: &Watch,
) -> ExecCheck {
    quiet_injected_panics();
    let graph = ExecGraph::generate(seed, spec);
    let reference = graph.reference();
    let label = format!("seed {seed} exec graph");
    let mut check = ExecCheck {
        nodes: graph.succ.len(),
        ..ExecCheck::default()
    };
    let mut deterministic: Option<Vec<Option<f64>>> = None;
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa);
    let n = graph.succ.len() as u32;
    let injected: Vec<(u32, ExecFault)> = (0..faults)
        .map(|_| {
            let kind = if rng.random_bool(0.5) {
                FaultKind::Panic
            } else {
                FaultKind::Error
            };
            (rng.random_range(0..n), ExecFault::Fail(kind))
        })
        .collect();
    for (i, cfg) in configs.iter().enumerate() {
        check.runs.push(i);
        let problem = match run_exec(&graph, cfg, &[], drop_later, watch, &label) {
            Err(e) => Some(format!("run failed: {e}")),
            Ok(got) => {
                let same = match (&deterministic, cfg.accumulation) {
                    (Some(first), Accumulation::Deterministic) => differ(&got, first, None),
                    _ => None,
                };
                if deterministic.is_none() && cfg.accumulation == Accumulation::Deterministic {
                    deterministic = Some(got.clone());
                }
                same.map(|p| format!("not bitwise equal to the first deterministic run: {p}"))
                    .or_else(|| {
                        differ(&got, &reference, Some(REFERENCE_TOLERANCE))
                            .map(|p| format!("differs from the reference: {p}"))
                    })
            }
        };
        if let Some(p) = problem {
            check.mismatches.push((i, p));
        }
        if injected.is_empty() {
            continue;
        }
        check.injected += 1;
        match run_exec(
            &graph,
            cfg,
            &injected,
            drop_later,
            watch,
            &format!("{label} faults {injected:?}"),
        ) {
            Err(e)
                if e.message.contains(super::build::INJECTED)
                    && injected
                        .iter()
                        .any(|f| e.op == format!("exec node {}", f.0)) =>
            {
                check.caught += 1
            }
            Err(e) => check
                .mismatches
                .push((i, format!("fault run failed otherwise: {e}"))),
            Ok(_) => check
                .mismatches
                .push((i, format!("faults {injected:?} returned Ok"))),
        }
    }
    if !injected.is_empty() {
        // The engine keeps working after the last fault.
        let after = run_exec(&graph, &configs[0], &[], drop_later, watch, &label);
        if let Some(p) = after
            .map_err(|e| e.to_string())
            .and_then(|g| differ(&g, &reference, Some(REFERENCE_TOLERANCE)).map_or(Ok(()), Err))
            .err()
        {
            check
                .mismatches
                .push((0, format!("clean run after faults: {p}")));
        }
    }
    check
}
