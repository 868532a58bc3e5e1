//! Concurrent callers: many user threads run backward at once on graphs that share leaves.
//!
//! Each healthy caller runs [`backflow::backward`] on its own graph over the shared
//! leaves, under its own configuration, all released together by a barrier. Faulty
//! callers run [`backflow::grad`] on graphs with injected faults over the same leaves
//! (so they touch no `.grad()`) and must get an `Err`. Afterwards each shared leaf's
//! `.grad()` must equal the sum of the healthy graphs' separate gradients, within a
//! tolerance: the order in which callers add into a leaf varies. No caller may lose
//! another's contribution, whatever fails beside it.

use super::build::FAULT_OP;
use super::faults::quiet_injected_panics;
use super::oracle::{compare, fast_tolerance, run_once, RunConfig};
use super::recipe::{GraphSpec, Recipe};
use super::watchdog::Watch;
use backflow::{backward, grad, Tensor};
use backflow_kernels::Element;
use std::sync::Barrier;

/// What a concurrent-callers check found.
#[derive(Debug, Default)]
pub struct CallersCheck {
    /// Backward runs made by the callers.
    pub runs: u64,
    /// Faulty callers whose run returned the expected `Err`.
    pub caught: u64,
    /// Faulty callers started.
    pub injected: u64,
    /// Descriptions of failures.
    pub failures: Vec<String>,
}

/// Runs `healthy + faulty` callers at once on graphs derived from `seed` that share one
/// set of leaves; caller `k` uses `configs[k % configs.len()]`.
pub fn check_callers<T: Element>(
    seed: u64,
    spec: &GraphSpec,
    healthy: usize,
    faulty: usize,
    configs: &[RunConfig],
    eps: f64,
    watch: &Watch,
) -> CallersCheck {
    quiet_injected_panics();
    let mut check = CallersCheck::default();
    let base = Recipe::generate(seed, spec);
    let leaves: Vec<Tensor<T>> = base
        .leaf_values()
        .into_iter()
        .map(Tensor::requires_grad)
        .collect();
    let recipes: Vec<Recipe> = (0..healthy + faulty)
        .map(|k| {
            let mut r = Recipe::generate(seed.wrapping_add(0x1000 * (k as u64 + 1)), spec);
            r.leaves = base.leaves.clone();
            if k >= healthy {
                r = r.with_faults(seed ^ k as u64, 1);
            }
            r
        })
        .collect();
    let graphs = match recipes
        .iter()
        .map(|r| r.build_on(&leaves))
        .collect::<backflow::Result<Vec<_>>>()
    {
        Ok(g) => g,
        Err(e) => {
            check.failures.push(format!("build failed: {e}"));
            return check;
        }
    };
    // The separate runs, summed in f64.
    let mut want: Vec<Option<Vec<f64>>> = vec![None; leaves.len()];
    let mut refs = Vec::new();
    for g in &graphs[..healthy] {
        match run_once(g, &RunConfig::reference(), true, true) {
            Ok(r) => {
                for (w, r) in want.iter_mut().zip(&r) {
                    if let Some(r) = r {
                        let w = w.get_or_insert_with(|| vec![0.0; r.len()]);
                        w.iter_mut().zip(r).for_each(|(w, r)| *w += r);
                    }
                }
                refs.push(r);
            }
            Err(e) => check.failures.push(format!("separate run failed: {e}")),
        }
    }
    if !check.failures.is_empty() {
        return check;
    }
    let barrier = Barrier::new(graphs.len());
    let results: Vec<Result<(), String>> = watch.run(
        || format!("seed {seed} concurrent callers ({healthy} healthy, {faulty} faulty)"),
        None,
        || {
            std::thread::scope(|s| {
                let handles: Vec<_> = graphs
                    .iter()
                    .enumerate()
                    .map(|(k, g)| {
                        let (barrier, cfg) = (&barrier, configs[k % configs.len()]);
                        s.spawn(move || {
                            barrier.wait();
                            let opts = cfg.options(true);
                            if k < healthy {
                                backward(
                                    &g.roots.iter().collect::<Vec<_>>(),
                                    &g.grad_outputs.iter().collect::<Vec<_>>(),
                                    &opts,
                                )
                                .map_err(|e| format!("caller {k} ({cfg}): {e}"))
                            } else {
                                match grad(
                                    &g.roots.iter().collect::<Vec<_>>(),
                                    &g.grad_outputs.iter().collect::<Vec<_>>(),
                                    &g.leaves.iter().collect::<Vec<_>>(),
                                    &opts,
                                ) {
                                    Err(e) if e.to_string().contains(FAULT_OP) => Ok(()),
                                    other => Err(format!(
                                        "faulty caller {k} ({cfg}): expected Err, got {other:?}"
                                    )),
                                }
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err("caller panicked".into())))
                    .collect()
            })
        },
    );
    check.runs += graphs.len() as u64;
    check.injected += faulty as u64;
    for (k, r) in results.into_iter().enumerate() {
        match r {
            Ok(()) if k >= healthy => check.caught += 1,
            Ok(()) => {}
            Err(e) => check.failures.push(e),
        }
    }
    let got: Vec<Option<Vec<f64>>> = leaves
        .iter()
        .map(|l| {
            l.grad()
                .map(|t| t.data().iter().map(|&v| Element::to_f64(v)).collect())
        })
        .collect();
    let depth = recipes.iter().map(Recipe::depth).max().unwrap_or(0);
    let fan_in = recipes.iter().map(Recipe::max_fan_in).sum::<usize>();
    if let Some(p) = compare(
        &got,
        &want,
        Some(fast_tolerance(eps, depth, fan_in + healthy)),
    ) {
        check
            .failures
            .push(format!("shared leaves after concurrent callers: {p}"));
    }
    // The engine still works: a healthy graph again gives its separate gradients bitwise.
    leaves.iter().for_each(Tensor::zero_grad);
    if let Some(g) = graphs.first().filter(|_| healthy > 0) {
        match run_once(g, &RunConfig::reference(), true, true) {
            Ok(r) => {
                if let Some(p) = compare(&r, &refs[0], None) {
                    check
                        .failures
                        .push(format!("rerun after concurrent callers: {p}"));
                }
            }
            Err(e) => check
                .failures
                .push(format!("rerun after concurrent callers failed: {e}")),
        }
    }
    check
}
