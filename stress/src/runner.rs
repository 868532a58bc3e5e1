//! The stress run: many seeds, checked concurrently on every core, under one watchdog.
//!
//! Graph `i` of a run uses seed `seed + i`, and everything about it (its size, whether it
//! gets faults, an f64 finite-difference check, a concurrent-callers, re-entrant or
//! unequal-callers check) is drawn from that seed alone, so `--seed S --graphs 1` reproduces graph `S` exactly.

use super::callers::check_callers;
use super::exec_oracle::check_exec;
use super::faults::check_faults;
use super::oracle::{check_recipe, configs, finite_differences, RunConfig};
use super::recipe::{GraphSpec, Recipe};
use super::reentrant::{check_reentrant, ReentrantMutation};
use super::report::{Failure, Summary};
use super::unequal::{check_unequal, UnequalMutation};
use super::watchdog::{Watch, Watchdog};
use backflow_kernels::Element;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a stress run does.
#[derive(Clone, Debug)]
pub struct StressConfig {
    /// Seed of the first graph; graph `i` uses `seed + i`.
    pub seed: u64,
    /// Number of graphs (the run may stop earlier on `duration`).
    pub graphs: u64,
    /// Stop starting graphs after this long.
    pub duration: Option<Duration>,
    /// Thread counts for the `Parallel` scheduler.
    pub threads: Vec<usize>,
    /// Graphs checked at once (worker threads of the harness).
    pub jobs: usize,
    /// Generator knobs; each graph draws its op count from `[nodes / 2, nodes]`.
    pub spec: GraphSpec,
    /// Probability that a graph also gets a fault-injection check (1–3 faults).
    pub fault_rate: f64,
    /// Watchdog deadline of one run.
    pub deadline: Duration,
    /// Seeds divisible by this are checked in f64 with finite differences (0: never).
    pub f64_every: u64,
    /// Seeds divisible by this get a concurrent-callers check (0: never).
    pub callers_every: u64,
    /// Seeds divisible by this get a re-entrant check: hooks, `on_grad_ready` callbacks and
    /// a custom op that run nested backward passes (0: never).
    pub reentrant_every: u64,
    /// The deepest nesting of the re-entrant check; each such seed draws from
    /// `1..=reentrant_depth`.
    pub reentrant_depth: usize,
    /// Seeds divisible by this get an unequal-callers check: an independent caller must
    /// finish its passes while another caller's slow branch blocks (0: never).
    pub unequal_every: u64,
    /// The mutation: executor-level gradients drop their later contribution.
    pub drop_later: bool,
    /// Stop after this many failing graphs.
    pub max_failures: usize,
}

impl Default for StressConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            graphs: 1000,
            duration: None,
            threads: vec![1, 2, 4, 8, 16],
            jobs: backflow_engine::exec::default_threads(),
            spec: GraphSpec {
                nodes: 80,
                ..GraphSpec::default()
            },
            fault_rate: 0.02,
            deadline: Duration::from_secs(30),
            f64_every: 16,
            callers_every: 64,
            reentrant_every: 8,
            reentrant_depth: 3,
            unequal_every: 16,
            drop_later: false,
            max_failures: 5,
        }
    }
}

struct Shared {
    cfg: StressConfig,
    configs: Vec<RunConfig>,
    start: Instant,
    next: AtomicU64,
    done: AtomicU64,
    failing: AtomicUsize,
    stop: AtomicBool,
    finished: AtomicUsize,
    results: Mutex<Vec<Summary>>,
}

/// Runs the stress test; `progress(graphs done)` is called a few times a second.
pub fn run(cfg: &StressConfig, progress: &dyn Fn(u64)) -> Summary {
    super::faults::quiet_injected_panics();
    let jobs = cfg.jobs.max(1);
    let shared = Arc::new(Shared {
        configs: configs(&cfg.threads),
        cfg: cfg.clone(),
        start: Instant::now(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failing: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        finished: AtomicUsize::new(0),
        results: Mutex::new(Vec::new()),
    });
    let watchdog = Watchdog::start(jobs, cfg.deadline);
    for j in 0..jobs {
        let (shared, watch) = (Arc::clone(&shared), watchdog.slot(j));
        std::thread::Builder::new()
            .name(format!("stress-{j}"))
            .spawn(move || worker(&shared, &watch))
            .expect("stress: cannot start a worker");
    }
    let mut hang_seen: Option<Instant> = None;
    while shared.finished.load(Ordering::Acquire) < jobs {
        std::thread::sleep(Duration::from_millis(50));
        progress(shared.done.load(Ordering::Relaxed));
        if hang_seen.is_none() && !watchdog.hangs().is_empty() {
            shared.stop.store(true, Ordering::Release);
            hang_seen = Some(Instant::now());
        }
        // Hung workers never finish: give the others time to, then report.
        if hang_seen.is_some_and(|t| t.elapsed() > cfg.deadline + Duration::from_secs(2)) {
            break;
        }
    }
    progress(shared.done.load(Ordering::Relaxed));
    let mut summary = Summary::new(shared.configs.clone());
    for part in shared
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        summary.merge(part);
    }
    summary.failures.sort_by_key(|f| f.seed);
    summary.hangs = watchdog.hangs();
    summary.elapsed = shared.start.elapsed();
    summary
}

fn worker(shared: &Shared, watch: &Watch) {
    let cfg = &shared.cfg;
    let mut summary = Summary::new(shared.configs.clone());
    while !shared.stop.load(Ordering::Acquire)
        && cfg.duration.is_none_or(|d| shared.start.elapsed() < d)
    {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= cfg.graphs {
            break;
        }
        let (before, graphs_before) = (summary.failures.len(), summary.graphs);
        let seed = cfg.seed.wrapping_add(i);
        // A panicking check is a failure of its seed, not a lost worker: the run goes on
        // (or stops at `max_failures`) and reports it with the seed that reproduces it.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_seed(seed, cfg, &shared.configs, watch, &mut summary)
        }));
        if let Err(payload) = checked {
            // The graph counts as checked, even where it panicked before being counted.
            summary.graphs = graphs_before + 1;
            summary.failures.push(Failure {
                seed,
                phase: "panic",
                config: None,
                message: format!("a check panicked: {}", panic_message(payload.as_ref())),
            });
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        if summary.failures.len() > before
            && shared.failing.fetch_add(1, Ordering::AcqRel) + 1 >= cfg.max_failures
        {
            shared.stop.store(true, Ordering::Release);
        }
    }
    shared
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(summary);
    shared.finished.fetch_add(1, Ordering::Release);
}

/// The text of a panic's payload (`&str` or `String`), or a placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-text payload)".to_string())
}

/// Checks every phase of graph `seed` and adds the results to `summary`.
pub fn check_seed(
    seed: u64,
    cfg: &StressConfig,
    configs: &[RunConfig],
    watch: &Watch,
    summary: &mut Summary,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut spec = cfg.spec.clone();
    spec.nodes = rng.random_range((cfg.spec.nodes / 2).max(1)..=cfg.spec.nodes.max(1));
    let faults = if rng.random_bool(cfg.fault_rate.clamp(0.0, 1.0)) {
        rng.random_range(1..=3)
    } else {
        0
    };
    summary.graphs += 1;
    if cfg.f64_every > 0 && seed % cfg.f64_every == 0 {
        check_tensor::<f64>(seed, &spec, faults, configs, watch, summary);
    } else {
        check_tensor::<f32>(seed, &spec, faults, configs, watch, summary);
    }
    let exec_spec = GraphSpec {
        nodes: spec.nodes * 2,
        ..spec.clone()
    };
    let exec = check_exec(seed, &exec_spec, configs, faults, cfg.drop_later, watch);
    summary.exec_nodes += exec.nodes as u64;
    summary.injected += exec.injected;
    summary.caught += exec.caught;
    summary.record(seed, "exec", &exec.runs, exec.mismatches);
    if cfg.callers_every > 0 && seed % cfg.callers_every == 0 {
        let eps = f32::EPSILON as f64;
        let callers =
            check_callers::<f32>(seed, &spec, 3, usize::from(faults > 0), configs, eps, watch);
        summary.caller_checks += 1;
        summary.caller_runs += callers.runs;
        summary.injected += callers.injected;
        summary.caught += callers.caught;
        for message in callers.failures {
            summary.failures.push(Failure {
                seed,
                phase: "callers",
                config: None,
                message,
            });
        }
    }
    if cfg.reentrant_every > 0 && seed % cfg.reentrant_every == 0 {
        let r = check_reentrant::<f32>(
            seed,
            &spec,
            cfg.reentrant_depth,
            configs,
            f32::EPSILON as f64,
            ReentrantMutation::None,
            watch,
        );
        summary.reentrant_checks += 1;
        summary.inner_passes += r.inner_passes;
        summary.record(seed, "reentrant", &r.runs, r.failures);
    }
    if cfg.unequal_every > 0 && seed % cfg.unequal_every == 0 {
        let u = check_unequal::<f32>(
            seed,
            &spec,
            UNEQUAL_B_PASSES,
            configs,
            f32::EPSILON as f64,
            cfg.deadline / 2,
            UnequalMutation::None,
            watch,
        );
        summary.unequal_checks += 1;
        summary.b_passes += u.b_passes;
        summary.record(seed, "unequal callers", &u.runs, u.failures);
    }
}

/// The passes caller B runs in each unequal-callers run of [`check_seed`].
pub const UNEQUAL_B_PASSES: usize = 4;

fn check_tensor<T: Element>(
    seed: u64,
    spec: &GraphSpec,
    faults: usize,
    configs: &[RunConfig],
    watch: &Watch,
    summary: &mut Summary,
) {
    let f64_mode = T::NAME == "f64";
    let eps = if f64_mode {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    let recipe = Recipe::generate(seed, spec);
    let label = format!("seed {seed} tensor graph ({})", T::NAME);
    let check = check_recipe::<T>(&recipe, configs, eps, watch, &label);
    summary.tensor_nodes += check.nodes as u64;
    summary.record(seed, "tensor", &check.runs, check.mismatches);
    if check.reference.is_empty() {
        return;
    }
    if f64_mode {
        summary.fd_checks += 1;
        if let Some(message) = finite_differences(&recipe, &check.reference, 2) {
            summary.failures.push(Failure {
                seed,
                phase: "finite differences",
                config: None,
                message,
            });
        }
    }
    if faults > 0 {
        let f = check_faults::<T>(&recipe, seed, faults, configs, &check.reference, watch);
        summary.injected += f.injected;
        summary.caught += f.caught;
        let runs: Vec<usize> = (0..configs.len()).flat_map(|i| [i, i]).collect();
        summary.record(seed, "faults", &runs, f.failures);
    }
}
