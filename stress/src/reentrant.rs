//! Re-entrant graphs: backward passes started from inside a backward pass.
//!
//! A seed's recipe graph (the *outer* graph, level 0) gets passive hooks
//! ([`Tensor::register_hook`], returning `None`) on a few intermediate tensors, passive
//! [`Tensor::on_grad_ready`] callbacks on its leaves, maybe a passive identity
//! [`CustomOp`], and one *trigger*: a hook, an `on_grad_ready` callback or an identity
//! custom op whose backward runs an *inner pass* — [`backflow::grad`] with `retain_graph`
//! over another, separately built recipe graph (level 1, from a derived seed). That graph
//! has a trigger of its own into level 2, and so on down to the drawn depth (1 to 3 by
//! default), so every outer run starts `depth` passes nested inside each other.
//!
//! The references (every level's gradients) are computed once, sequentially, with `Dfs`,
//! before any hook is registered and with the triggers disarmed. Then, under every
//! configuration and the watchdog, the outer gradients must equal the outer reference (bitwise
//! in `Deterministic` mode, within [`fast_tolerance`] in `Fast`), each inner pass's gradients
//! must equal its own graph's reference the same way (the inner pass runs under the outer
//! run's configuration), and every outer run must start exactly `depth` inner passes.

use super::build::TensorGraph;
use super::oracle::{compare, fast_tolerance, run_once, LeafGrads, RunConfig};
use super::recipe::{GraphSpec, Recipe};
use super::watchdog::Watch;
use backflow::{Accumulation, BackwardCtx, CustomOp, Result, Tensor};
use backflow_kernels::Element;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The op name of the identity custom op the check inserts.
pub const RELAY_OP: &str = "stress_relay";

/// A deliberate bug, to see the check report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReentrantMutation {
    /// No bug.
    #[default]
    None,
    /// Each inner pass's gradients are perturbed before they are compared.
    PerturbInner,
    /// One passive hook on the outer graph replaces the gradient (doubles it) instead of
    /// returning `None`.
    HookReplaces,
}

/// How a level starts the pass of the level below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A hook on an intermediate tensor.
    Hook,
    /// An `on_grad_ready` callback on a leaf that gets a gradient.
    GradReady,
    /// The backward of an identity custom op.
    CustomOp,
}

/// What a re-entrant check found.
#[derive(Debug, Default)]
pub struct ReentrantCheck {
    /// Nesting depth: inner passes per outer run.
    pub depth: usize,
    /// The trigger of each level that starts an inner pass (outermost first).
    pub triggers: Vec<Trigger>,
    /// Indices into the configuration list of the outer runs made.
    pub runs: Vec<usize>,
    /// Inner passes run (all depths, all configurations).
    pub inner_passes: u64,
    /// `(configuration index, description)` of each failure; `usize::MAX` for problems
    /// outside a run (build, references).
    pub failures: Vec<(usize, String)>,
}

/// State the triggers of every level share.
struct Shared {
    /// Triggers do nothing until the references are taken.
    armed: AtomicBool,
    /// The configuration of the outer run in progress; inner passes run under it too.
    cfg: Mutex<RunConfig>,
    passes: AtomicU64,
    failures: Mutex<Vec<String>>,
    mutation: ReentrantMutation,
}

impl Shared {
    fn fail(&self, message: String) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }
}

/// A level below the outer graph, run as an inner pass by the level above.
struct Inner<T: Element> {
    level: usize,
    graph: TensorGraph<T>,
    reference: LeafGrads,
    tol: f64,
}

impl<T: Element> Inner<T> {
    /// Runs this level's pass (which may start the next level's) and checks it.
    fn pass(&self, shared: &Shared) {
        if !shared.armed.load(Ordering::Acquire) {
            return;
        }
        let cfg = *shared.cfg.lock().unwrap_or_else(|e| e.into_inner());
        shared.passes.fetch_add(1, Ordering::AcqRel);
        match run_once(&self.graph, &cfg, true, true) {
            Ok(mut got) => {
                if shared.mutation == ReentrantMutation::PerturbInner {
                    if let Some(v) = got.iter_mut().flatten().flatten().next() {
                        *v += 1.0 + v.abs();
                    }
                }
                let tol = match cfg.accumulation {
                    Accumulation::Deterministic => None,
                    Accumulation::Fast => Some(self.tol),
                };
                if let Some(p) = compare(&got, &self.reference, tol) {
                    shared.fail(format!("inner pass at depth {}: {p}", self.level));
                }
            }
            Err(e) => shared.fail(format!("inner pass at depth {} failed: {e}", self.level)),
        }
    }
}

/// `y = x`, whose backward passes the gradient through unchanged and, when it carries a
/// level, runs that level's inner pass first.
struct Relay<T: Element> {
    inner: Option<Arc<Inner<T>>>,
    shared: Arc<Shared>,
}

impl<T: Element> CustomOp<T> for Relay<T> {
    fn name(&self) -> &'static str {
        RELAY_OP
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
        if let Some(inner) = &self.inner {
            inner.pass(&self.shared);
        }
        Ok(vec![Some(grad.clone())])
    }
}

/// One level as built: its graph, reference and the tensors its hooks go on.
struct Built<T: Element> {
    graph: TensorGraph<T>,
    reference: LeafGrads,
    tol: f64,
    /// Intermediate tensors (op outputs), in op order.
    intermediates: Vec<Tensor<T>>,
}

/// Builds `recipe` with an identity custom op after op `relay_at` (if any), carrying
/// `inner`, and takes its `Dfs` reference (the triggers are not armed yet).
fn build_level<T: Element>(
    recipe: &Recipe,
    relay_at: Option<usize>,
    inner: Option<Arc<Inner<T>>>,
    shared: &Arc<Shared>,
    eps: f64,
) -> std::result::Result<Built<T>, String> {
    let mut intermediates = Vec::new();
    let mut inner = inner;
    let leaves: Vec<Tensor<T>> = recipe
        .leaf_values()
        .into_iter()
        .map(Tensor::requires_grad)
        .collect();
    let graph = recipe
        .build_with(&leaves, &mut |i, t| {
            let t = if Some(i) == relay_at {
                let relay = Relay {
                    inner: inner.take(),
                    shared: Arc::clone(shared),
                };
                Tensor::apply_op(relay, &[&t])?
            } else {
                t
            };
            intermediates.push(t.clone());
            Ok(t)
        })
        .map_err(|e| format!("build failed: {e}"))?;
    let reference = run_once(&graph, &RunConfig::reference(), true, true)
        .map_err(|e| format!("reference run failed: {e}"))?;
    if !reference.iter().flatten().flatten().all(|v| v.is_finite()) {
        return Err("reference gradient is not finite".into());
    }
    Ok(Built {
        graph,
        reference,
        tol: fast_tolerance(eps, recipe.depth(), recipe.max_fan_in()),
        intermediates,
    })
}

/// Checks the re-entrant graphs of `seed`: nesting depth drawn from `1..=max_depth`, every
/// level a recipe of `spec` from a seed derived from `seed`, each outer run under one of
/// `configs` and watched by `watch`.
pub fn check_reentrant<T: Element>(
    seed: u64,
    spec: &GraphSpec,
    max_depth: usize,
    configs: &[RunConfig],
    eps: f64,
    mutation: ReentrantMutation,
    watch: &Watch,
) -> ReentrantCheck {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e3e_47a7_0000_0001);
    let depth = rng.random_range(1..=max_depth.max(1));
    let mut check = ReentrantCheck {
        depth,
        ..ReentrantCheck::default()
    };
    let shared = Arc::new(Shared {
        armed: AtomicBool::new(false),
        cfg: Mutex::new(RunConfig::reference()),
        passes: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
        mutation,
    });
    // Levels from the deepest up: each level's trigger needs the level below it.
    let mut below: Option<Arc<Inner<T>>> = None;
    let mut outer = None;
    let mut triggers = Vec::new();
    for level in (0..=depth).rev() {
        let level_seed = seed.wrapping_add(0x7e3e_0000 * level as u64);
        let recipe = Recipe::generate(level_seed, spec);
        let ops = recipe.ops.len();
        // The deepest level starts nothing.
        let trigger = (level < depth).then(|| match rng.random_range(0..3) {
            0 => Trigger::Hook,
            1 => Trigger::GradReady,
            _ => Trigger::CustomOp,
        });
        let relay_at = (ops > 0 && (trigger == Some(Trigger::CustomOp) || rng.random_bool(0.5)))
            .then(|| rng.random_range(0..ops));
        let relay_inner = below.clone().filter(|_| trigger == Some(Trigger::CustomOp));
        let built = match build_level::<T>(&recipe, relay_at, relay_inner, &shared, eps) {
            Ok(b) => b,
            Err(e) => {
                check
                    .failures
                    .push((usize::MAX, format!("level {level}: {e}")));
                return check;
            }
        };
        // Passive hooks and callbacks, registered after the reference.
        let hooks = built.intermediates.len().min(rng.random_range(1..=3));
        for h in 0..hooks {
            let t = &built.intermediates[rng.random_range(0..built.intermediates.len())];
            if level == 0 && h == 0 && mutation == ReentrantMutation::HookReplaces {
                t.register_hook(|g| Some(g * T::from_f64(2.0)));
            } else {
                t.register_hook(|_| None);
            }
        }
        for leaf in &built.graph.leaves {
            if rng.random_bool(0.5) {
                leaf.on_grad_ready(|_| {});
            }
        }
        let mut trigger = trigger;
        // A leaf that gets a gradient, for a `GradReady` trigger (else a hook instead).
        let ready_leaf = built
            .reference
            .iter()
            .position(Option::is_some)
            .map(|j| built.graph.leaves[j].clone());
        if trigger == Some(Trigger::GradReady) && ready_leaf.is_none() {
            trigger = Some(Trigger::Hook);
        }
        if trigger == Some(Trigger::Hook) && built.intermediates.is_empty() {
            trigger = None;
        }
        if let (Some(t), Some(inner)) = (trigger, below.clone()) {
            let s = Arc::clone(&shared);
            match t {
                Trigger::Hook => {
                    let at = rng.random_range(0..built.intermediates.len());
                    built.intermediates[at].register_hook(move |_| {
                        inner.pass(&s);
                        None
                    });
                }
                Trigger::GradReady => {
                    let leaf = ready_leaf.expect("checked above");
                    leaf.on_grad_ready(move |_| inner.pass(&s));
                }
                Trigger::CustomOp => {} // The relay carries it.
            }
            triggers.push(t);
        }
        if level == 0 {
            outer = Some(built);
        } else {
            below = Some(Arc::new(Inner {
                level,
                graph: built.graph,
                reference: built.reference,
                tol: built.tol,
            }));
        }
    }
    triggers.reverse();
    // A level with nothing to hang a trigger on ends the chain early.
    check.depth = triggers.len();
    check.triggers = triggers;
    let outer = outer.expect("level 0 is built");
    shared.armed.store(true, Ordering::Release);
    for (i, cfg) in configs.iter().enumerate() {
        *shared.cfg.lock().unwrap_or_else(|e| e.into_inner()) = *cfg;
        let before = shared.passes.load(Ordering::Acquire);
        let got = watch.run(
            || format!("seed {seed} re-entrant graph (depth {}) {cfg}", check.depth),
            None,
            || run_once(&outer.graph, cfg, i % 2 == 0, true),
        );
        check.runs.push(i);
        let passes = shared.passes.load(Ordering::Acquire) - before;
        check.inner_passes += passes;
        let tol = match cfg.accumulation {
            Accumulation::Deterministic => None,
            Accumulation::Fast => Some(outer.tol),
        };
        match got {
            Err(e) => check.failures.push((i, format!("outer run failed: {e}"))),
            Ok(got) => {
                if let Some(p) = compare(&got, &outer.reference, tol) {
                    check.failures.push((i, format!("outer gradients: {p}")));
                }
            }
        }
        if passes != check.depth as u64 {
            check.failures.push((
                i,
                format!(
                    "{passes} inner passes, expected {} (triggers {:?})",
                    check.depth, check.triggers
                ),
            ));
        }
        let inner_failures =
            std::mem::take(&mut *shared.failures.lock().unwrap_or_else(|e| e.into_inner()));
        check
            .failures
            .extend(inner_failures.into_iter().map(|m| (i, m)));
    }
    shared.armed.store(false, Ordering::Release);
    check
}
