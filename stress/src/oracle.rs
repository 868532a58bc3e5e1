//! The differential oracle over tensor graphs: one graph, every configuration.
//!
//! The reference is `Dfs` on one thread in `Deterministic` mode. Every other run must
//! match it bitwise in `Deterministic` mode and within [`fast_tolerance`] in `Fast` mode.
//! Runs alternate between [`backflow::backward`] (leaf `.grad()`) and
//! [`backflow::grad`], which must agree bitwise too; the last run frees the graph
//! (`retain_graph(false)`), the others retain it. In f64 the reference is also checked
//! against central finite differences of the objective `Σ_k ⟨grad_outputs[k], roots[k]⟩`
//! along random directions.

use super::build::TensorGraph;
use super::recipe::Recipe;
use super::watchdog::Watch;
use backflow::{
    backward, clamp_threads, grad, Accumulation, BackwardOptions, Result, Scheduler, Tensor,
};
use backflow_kernels::{numeric_gradient, Element};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One configuration of a backward run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunConfig {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// Worker threads (the sequential schedulers ignore it).
    pub threads: usize,
    /// The accumulation mode.
    pub accumulation: Accumulation,
}

impl RunConfig {
    /// The backward options of this configuration.
    pub fn options(&self, retain: bool) -> BackwardOptions {
        BackwardOptions::new()
            .scheduler(self.scheduler)
            .threads(self.threads)
            .accumulation(self.accumulation)
            .retain_graph(retain)
    }

    /// The reference configuration: `Dfs`, one thread, `Deterministic`.
    pub fn reference() -> RunConfig {
        RunConfig {
            scheduler: Scheduler::Dfs,
            threads: 1,
            accumulation: Accumulation::Deterministic,
        }
    }
}

impl std::fmt::Display for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.accumulation {
            Accumulation::Deterministic => "deterministic",
            Accumulation::Fast => "fast",
        };
        write!(f, "{}/{}/{mode}", self.scheduler.name(), self.threads)
    }
}

/// Every scheduler × `threads` × both modes. The sequential schedulers run on the calling
/// thread whatever the count, so they appear once per mode, with 1 thread; `Parallel`'s
/// counts are clamped as a pass clamps them ([`clamp_threads`]), so each is labelled with
/// the count that runs.
pub fn configs(threads: &[usize]) -> Vec<RunConfig> {
    let mut out = Vec::new();
    for accumulation in [Accumulation::Deterministic, Accumulation::Fast] {
        for scheduler in Scheduler::ALL {
            let counts: Vec<usize> = if scheduler == Scheduler::Parallel {
                // Labelled by the count a pass really uses.
                let mut run: Vec<usize> = threads.iter().map(|&t| clamp_threads(t)).collect();
                run.sort_unstable();
                run.dedup();
                run
            } else {
                vec![1]
            };
            for threads in counts {
                out.push(RunConfig {
                    scheduler,
                    threads,
                    accumulation,
                });
            }
        }
    }
    out
}

/// Leaf gradients of one run, as f64 (exact for f32 and f64), `None` where none flowed.
pub type LeafGrads = Vec<Option<Vec<f64>>>;

/// Runs `g` once under `cfg`: via `grad` when `use_grad`, else via `backward` into the
/// leaves' `.grad()` (cleared before and after).
pub fn run_once<T: Element>(
    g: &TensorGraph<T>,
    cfg: &RunConfig,
    use_grad: bool,
    retain: bool,
) -> Result<LeafGrads> {
    let opts = cfg.options(retain);
    let to_f64 = |t: &Tensor<T>| {
        t.data()
            .iter()
            .map(|&v| Element::to_f64(v))
            .collect::<Vec<f64>>()
    };
    if use_grad {
        let grads = grad(
            &g.roots.iter().collect::<Vec<_>>(),
            &g.grad_outputs.iter().collect::<Vec<_>>(),
            &g.leaves.iter().collect::<Vec<_>>(),
            &opts,
        )?;
        return Ok(grads.iter().map(|t| t.as_ref().map(to_f64)).collect());
    }
    g.leaves.iter().for_each(Tensor::zero_grad);
    let result = backward(
        &g.roots.iter().collect::<Vec<_>>(),
        &g.grad_outputs.iter().collect::<Vec<_>>(),
        &opts,
    );
    let grads = g
        .leaves
        .iter()
        .map(|l| l.grad().as_ref().map(to_f64))
        .collect();
    g.leaves.iter().for_each(Tensor::zero_grad);
    result.map(|()| grads)
}

/// The tolerance of `Fast` against `Deterministic`, relative to the gradients' scale: each
/// sum of `k` contributions may round differently in each of its `k - 1` additions, and
/// the difference propagates through every layer. The scale is the final gradients', while
/// intermediate sums may be larger and cancel (`x·x − x`), so the factor leaves room for
/// that amplification (a proptest found a case at 1.02× a factor of 8).
pub fn fast_tolerance(eps: f64, depth: usize, fan_in: usize) -> f64 {
    64.0 * eps * (depth as f64 + 1.0) * (fan_in as f64 + 1.0)
}

/// The largest magnitude among the gradients (at least the smallest normal f64).
pub fn scale(grads: &LeafGrads) -> f64 {
    grads
        .iter()
        .flatten()
        .flatten()
        .fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()))
}

/// Compares `got` with `want`: bitwise when `tol` is `None`, else within `tol * scale`.
/// Returns a description of the first difference.
pub fn compare(got: &LeafGrads, want: &LeafGrads, tol: Option<f64>) -> Option<String> {
    let limit = tol.map(|t| t * scale(want));
    for (leaf, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = match (g, w) {
            (Some(g), Some(w)) => (g, w),
            (None, None) => continue,
            _ => return Some(format!("leaf {leaf}: gradient present in one run only")),
        };
        for (e, (&a, &b)) in g.iter().zip(w).enumerate() {
            let bad = match limit {
                None => a.to_bits() != b.to_bits(),
                // NaN counts as a difference.
                Some(limit) => (a - b).abs() > limit || (a - b).is_nan(),
            };
            if bad {
                let within = limit
                    .map(|l| format!(" (tolerance {l:e})"))
                    .unwrap_or_default();
                return Some(format!(
                    "leaf {leaf} element {e}: {a:e} vs reference {b:e}{within}"
                ));
            }
        }
    }
    None
}

/// The outcome of checking one graph.
#[derive(Debug, Default)]
pub struct GraphCheck {
    /// Indices into the configuration list of the runs made.
    pub runs: Vec<usize>,
    /// `(configuration index, description)` of each mismatch; index `usize::MAX` for
    /// problems outside a run (build, reference, finite differences).
    pub mismatches: Vec<(usize, String)>,
    /// Tensor nodes in the graph.
    pub nodes: usize,
    /// The reference gradients (empty if the reference failed).
    pub reference: LeafGrads,
}

/// Checks `recipe` in element type `T` under every configuration of `configs`.
pub fn check_recipe<T: Element>(
    recipe: &Recipe,
    configs: &[RunConfig],
    eps: f64,
    watch: &Watch,
    label: &str,
) -> GraphCheck {
    let mut check = GraphCheck::default();
    let g = match recipe.build::<T>() {
        Ok(g) => g,
        Err(e) => {
            check
                .mismatches
                .push((usize::MAX, format!("build failed: {e}")));
            return check;
        }
    };
    check.nodes = g.nodes;
    let reference = watch.run(
        || format!("{label} reference"),
        None,
        || run_once(&g, &RunConfig::reference(), true, true),
    );
    let reference = match reference {
        Ok(r) if r.iter().flatten().flatten().all(|v| v.is_finite()) => r,
        Ok(_) => {
            check
                .mismatches
                .push((usize::MAX, "reference gradient is not finite".into()));
            return check;
        }
        Err(e) => {
            check
                .mismatches
                .push((usize::MAX, format!("reference run failed: {e}")));
            return check;
        }
    };
    let tol = fast_tolerance(eps, recipe.depth(), recipe.max_fan_in());
    for (i, cfg) in configs.iter().enumerate() {
        let retain = i + 1 < configs.len();
        let got = watch.run(
            || format!("{label} {cfg}"),
            None,
            || run_once(&g, cfg, i % 2 == 0, retain),
        );
        check.runs.push(i);
        let problem = match got {
            Err(e) => Some(format!("run failed: {e}")),
            Ok(got) => match cfg.accumulation {
                Accumulation::Deterministic => compare(&got, &reference, None),
                Accumulation::Fast => compare(&got, &reference, Some(tol)),
            },
        };
        if let Some(p) = problem {
            check.mismatches.push((i, p));
        }
    }
    check.reference = reference;
    check
}

/// Checks f64 reference gradients of `recipe` against central finite differences of its
/// objective along `directions` random directions. Returns a description of a mismatch.
pub fn finite_differences(
    recipe: &Recipe,
    reference: &LeafGrads,
    directions: usize,
) -> Option<String> {
    let base = recipe.leaf_values::<f64>();
    let mut rng = StdRng::seed_from_u64(recipe.value_seed ^ 0xfd);
    let h = 1e-5;
    for d in 0..directions {
        let v: Vec<Vec<f64>> = base
            .iter()
            .map(|t| {
                (0..t.numel())
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        // The directional derivative along v: d/dt objective(base + t·v) at t = 0, by the
        // library's one central-difference routine.
        let at = |t: f64| -> Vec<Tensor<f64>> {
            base.iter()
                .zip(&v)
                .map(|(x, v)| {
                    let data = x.data().iter().zip(v).map(|(x, v)| x + t * v).collect();
                    Tensor::from_vec(data, x.shape()).expect("same shape")
                })
                .collect()
        };
        let mut failure = None;
        let numeric = numeric_gradient(
            |t| match recipe.objective(&at(t[0])) {
                Ok(value) => value,
                Err(e) => {
                    failure.get_or_insert(e);
                    f64::NAN
                }
            },
            &[0.0],
            h,
        )[0];
        if let Some(e) = failure {
            return Some(format!("objective failed: {e}"));
        }
        let terms = reference.iter().zip(&v).flat_map(|(g, v)| {
            v.iter()
                .enumerate()
                .map(move |(e, v)| g.as_ref().map_or(0.0, |g| g[e] * v))
        });
        let (analytic, magnitude) = terms.fold((0.0, 0.0), |(s, m), t: f64| (s + t, m + t.abs()));
        if (numeric - analytic).abs() > 1e-6 * (magnitude + numeric.abs()) + 1e-9 {
            return Some(format!(
                "finite differences (direction {d}): numeric {numeric:e}, backward {analytic:e}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_rows_are_labelled_with_the_thread_count_that_runs() {
        let most = backflow::max_threads();
        let all = configs(&[1, 2, most, most + 8, 4 * most]);
        let parallel: Vec<usize> = all
            .iter()
            .filter(|c| c.scheduler == Scheduler::Parallel)
            .map(|c| c.threads)
            .collect();
        // Per mode: 1, 2 and the clamped count once, never a count beyond what a pass uses.
        let per_mode = if most > 2 {
            vec![1, 2, most]
        } else {
            vec![1, 2]
        };
        assert_eq!(parallel, [per_mode.clone(), per_mode].concat());
        assert!(all.iter().all(|c| c.threads <= most));
    }
}
