//! Stress-testing a graph of your own: build it afresh for every run, differentiate it
//! under every scheduler × thread count × accumulation mode, alone and from several
//! threads at once, each run under a deadline, and compare every leaf's gradient with the
//! sequential reference (`Dfs`, `Deterministic`): bitwise in `Deterministic` mode, within
//! a tolerance in `Fast` mode.
//!
//! This is how a custom op ([`backflow::CustomOp`]) gets the same scrutiny as the built-in
//! ops: put it in a graph with shared inputs and several branches and call
//! [`check_graph`].

use super::oracle::{compare, configs, LeafGrads, RunConfig};
use super::watchdog::run_with_deadline;
use backflow::{Accumulation, Result, Tensor};
use backflow_kernels::Element;
use std::sync::Arc;
use std::time::Duration;

/// What a graph builder returns: the one-element loss and the leaves to check.
pub type Built<T> = Result<(Tensor<T>, Vec<Tensor<T>>)>;

/// How hard [`check_graph`] tries.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphStress {
    /// Thread counts for `Parallel`.
    pub threads: Vec<usize>,
    /// Times each configuration runs (a fresh graph each time).
    pub repeats: usize,
    /// Callers that differentiate their own copies of the graph at the same time, in the
    /// concurrent round (0 skips it).
    pub concurrent_callers: usize,
    /// The longest a single run may take before it counts as a hang.
    pub deadline: Duration,
    /// `Fast` mode's tolerance, relative to the largest reference gradient.
    pub fast_tolerance: f64,
}

impl Default for GraphStress {
    fn default() -> Self {
        Self {
            threads: vec![1, 2, 4, 8],
            repeats: 3,
            concurrent_callers: 4,
            deadline: Duration::from_secs(30),
            fast_tolerance: 1e-4,
        }
    }
}

/// What [`check_graph`] ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphStressReport {
    /// Configurations checked.
    pub configs: usize,
    /// Backward passes run and compared, the reference's included.
    pub runs: usize,
}

/// Checks the graph that `build` returns, as `(loss, leaves)`: the loss is differentiated
/// with `backward` under every configuration of `cfg`, and each leaf's `.grad()` compared
/// with the reference. `build` is called once per run, so the graph is fresh each time.
///
/// Returns a description of the first mismatch, error or hang, naming the configuration.
///
/// ```
/// use backflow::Tensor;
/// use backflow_stress::{check_graph, GraphStress};
/// let report = check_graph("shared input", &GraphStress::default(), || {
///     let x = Tensor::<f64>::randn(&[4], 1).requires_grad();
///     let branches: Vec<Tensor<f64>> = (0..8).map(|k| (&x * k as f64).sin().sum()).collect();
///     let loss = branches.iter().skip(1).fold(branches[0].clone(), |a, b| &a + b);
///     Ok((loss, vec![x]))
/// })
/// .unwrap();
/// assert!(report.runs > report.configs);
/// ```
pub fn check_graph<T, F>(
    label: &str,
    cfg: &GraphStress,
    build: F,
) -> std::result::Result<GraphStressReport, String>
where
    T: Element,
    F: Fn() -> Built<T> + Send + Sync + 'static,
{
    let build = Arc::new(build);
    let reference = run_timed(label, cfg, &build, RunConfig::reference())?;
    let mut report = GraphStressReport {
        configs: 0,
        runs: 1,
    };
    let all = configs(&cfg.threads);
    for config in &all {
        report.configs += 1;
        for _ in 0..cfg.repeats.max(1) {
            let got = run_timed(label, cfg, &build, *config)?;
            check(label, config, cfg, &got, &reference)?;
            report.runs += 1;
        }
    }
    if cfg.concurrent_callers > 0 {
        report.runs += concurrent_round(label, cfg, &build, &all, &reference)?;
    }
    Ok(report)
}

/// Runs every configuration from `cfg.concurrent_callers` threads at once, each on its own
/// copy of the graph; returns the number of runs.
fn concurrent_round<T, F>(
    label: &str,
    cfg: &GraphStress,
    build: &Arc<F>,
    all: &[RunConfig],
    reference: &LeafGrads,
) -> std::result::Result<usize, String>
where
    T: Element,
    F: Fn() -> Built<T> + Send + Sync + 'static,
{
    let callers: Vec<_> = (0..cfg.concurrent_callers)
        .map(|caller| {
            let build = Arc::clone(build);
            let all = all.to_vec();
            std::thread::spawn(
                move || -> std::result::Result<Vec<(RunConfig, LeafGrads)>, String> {
                    // Each caller starts at a different configuration, so different schedulers
                    // and thread counts overlap.
                    let n = all.len();
                    (0..n)
                        .map(|k| {
                            let config = all[(k + caller) % n];
                            run_once(&*build, config)
                                .map(|grads| (config, grads))
                                .map_err(|e| format!("{config}: {e}"))
                        })
                        .collect()
                },
            )
        })
        .collect();
    let per_caller = all.len();
    let joined = run_with_deadline(
        &format!("{label}: concurrent callers"),
        cfg.deadline * per_caller as u32,
        None,
        move || {
            callers
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a caller panicked".to_string()))
                })
                .collect::<Vec<_>>()
        },
    )
    .map_err(|hang| format!("{label}: {hang}"))?;
    let mut runs = 0;
    for caller in joined {
        for (config, grads) in caller.map_err(|e| format!("{label} (concurrent): {e}"))? {
            check(label, &config, cfg, &grads, reference)
                .map_err(|e| format!("{e} (concurrent callers)"))?;
            runs += 1;
        }
    }
    Ok(runs)
}

/// One run under the deadline.
fn run_timed<T, F>(
    label: &str,
    cfg: &GraphStress,
    build: &Arc<F>,
    config: RunConfig,
) -> std::result::Result<LeafGrads, String>
where
    T: Element,
    F: Fn() -> Built<T> + Send + Sync + 'static,
{
    let build = Arc::clone(build);
    run_with_deadline(
        &format!("{label} under {config}"),
        cfg.deadline,
        None,
        move || run_once(&*build, config),
    )
    .map_err(|hang| format!("{label}: {hang}"))?
    .map_err(|e| format!("{label} under {config}: {e}"))
}

/// Builds the graph and differentiates it once under `config`.
fn run_once<T: Element>(build: &dyn Fn() -> Built<T>, config: RunConfig) -> Result<LeafGrads> {
    let (loss, leaves) = build()?;
    loss.backward_with(&config.options(false))?;
    Ok(leaves
        .iter()
        .map(|l| {
            l.grad()
                .map(|g| g.data().iter().map(|&v| Element::to_f64(v)).collect())
        })
        .collect())
}

/// Compares one run with the reference, bitwise or within the tolerance.
fn check(
    label: &str,
    config: &RunConfig,
    cfg: &GraphStress,
    got: &LeafGrads,
    reference: &LeafGrads,
) -> std::result::Result<(), String> {
    let tol = match config.accumulation {
        Accumulation::Deterministic => None,
        Accumulation::Fast => Some(cfg.fast_tolerance),
    };
    match compare(got, reference, tol) {
        None => Ok(()),
        Some(diff) => Err(format!("{label} under {config}: {diff}")),
    }
}
