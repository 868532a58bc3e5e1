//! The re-entrant and unequal-callers checks of the stress harness: on a few seeds they
//! pass under every configuration, and each reports a deliberate violation (perturbed
//! inner gradients, a hook that replaces the gradient, a caller B that cannot progress by
//! construction). The deadlines here are watchdogs, not timing assertions: a healthy run
//! never waits for them.

use backflow::Accumulation;
use backflow_stress::reentrant::{check_reentrant, ReentrantMutation, Trigger};
use backflow_stress::unequal::{check_unequal, UnequalMutation, NO_PROGRESS};
use backflow_stress::{check_seed, configs, GraphSpec, StressConfig, Summary, Watch, Watchdog};
use std::collections::HashSet;
use std::time::Duration;

const THREADS: [usize; 4] = [1, 2, 4, 8];

/// A generous watchdog deadline: a hang fails the test instead of stalling it.
const DEADLINE: Duration = Duration::from_secs(60);

fn spec() -> GraphSpec {
    GraphSpec {
        nodes: 80,
        ..GraphSpec::default()
    }
}

#[test]
fn reentrant_graphs_match_their_references_at_every_depth() {
    let configs = configs(&THREADS);
    let watchdog = Watchdog::start(1, DEADLINE);
    let watch = watchdog.slot(0);
    let mut depths = HashSet::new();
    let mut triggers = HashSet::new();
    for seed in 0..12 {
        let check = check_reentrant::<f32>(
            seed,
            &spec(),
            3,
            &configs,
            f32::EPSILON as f64,
            ReentrantMutation::None,
            &watch,
        );
        assert!(
            check.failures.is_empty(),
            "seed {seed}: {:?}",
            check.failures
        );
        assert_eq!(check.runs.len(), configs.len());
        assert_eq!(
            check.inner_passes,
            (check.depth * configs.len()) as u64,
            "seed {seed}"
        );
        depths.insert(check.depth);
        triggers.extend(check.triggers.iter().copied());
    }
    assert!(watchdog.hangs().is_empty(), "{:?}", watchdog.hangs());
    // The seeds cover every depth and every kind of trigger.
    assert_eq!(depths, HashSet::from([1, 2, 3]));
    assert_eq!(
        triggers,
        HashSet::from([Trigger::Hook, Trigger::GradReady, Trigger::CustomOp])
    );
}

#[test]
fn perturbed_inner_gradients_are_reported() {
    let configs = configs(&THREADS);
    for seed in 0..3 {
        let check = check_reentrant::<f32>(
            seed,
            &spec(),
            3,
            &configs,
            f32::EPSILON as f64,
            ReentrantMutation::PerturbInner,
            &Watch::none(),
        );
        // Every inner pass of every configuration is reported, and only inner passes.
        let inner = check
            .failures
            .iter()
            .filter(|(_, m)| m.starts_with("inner pass at depth"))
            .count();
        assert_eq!(inner, check.depth * configs.len(), "{:?}", check.failures);
        assert_eq!(inner, check.failures.len(), "{:?}", check.failures);
    }
}

#[test]
fn a_hook_that_replaces_the_gradient_is_reported() {
    let configs = configs(&THREADS);
    for seed in 0..3 {
        let check = check_reentrant::<f32>(
            seed,
            &spec(),
            2,
            &configs,
            f32::EPSILON as f64,
            ReentrantMutation::HookReplaces,
            &Watch::none(),
        );
        // Every `Deterministic` run is reported (bitwise); `Fast` runs may hide a small
        // change within their tolerance.
        let outer: HashSet<usize> = check
            .failures
            .iter()
            .filter(|(_, m)| m.starts_with("outer gradients"))
            .map(|&(i, _)| i)
            .collect();
        let deterministic: HashSet<usize> = (0..configs.len())
            .filter(|&i| configs[i].accumulation == Accumulation::Deterministic)
            .collect();
        assert!(outer.is_superset(&deterministic), "{:?}", check.failures);
    }
}

#[test]
fn caller_b_progresses_while_a_slow_branch_blocks() {
    let configs = configs(&THREADS);
    let watchdog = Watchdog::start(1, DEADLINE);
    let watch = watchdog.slot(0);
    for seed in 0..6 {
        let check = check_unequal::<f32>(
            seed,
            &spec(),
            4,
            &configs,
            f32::EPSILON as f64,
            DEADLINE / 2,
            UnequalMutation::None,
            &watch,
        );
        assert!(
            check.failures.is_empty(),
            "seed {seed}: {:?}",
            check.failures
        );
        // One run per parallel configuration (both modes), B's four passes in each.
        assert_eq!(check.runs.len(), 2 * THREADS.len());
        assert_eq!(check.b_passes, 4 * check.runs.len() as u64);
    }
    assert!(watchdog.hangs().is_empty(), "{:?}", watchdog.hangs());
}

#[test]
fn a_caller_b_that_cannot_progress_is_reported() {
    // B waits for A's pass to return before its own passes, and A's slow branch waits for
    // B: the gate's deadline (short here, to keep the test quick) must end the wait and
    // report it, under every thread count.
    let configs = configs(&[1, 4]);
    let check = check_unequal::<f32>(
        3,
        &spec(),
        2,
        &configs,
        f32::EPSILON as f64,
        Duration::from_millis(200),
        UnequalMutation::BWaitsForA,
        &Watch::none(),
    );
    assert_eq!(check.runs.len(), 4);
    let stuck: HashSet<usize> = check
        .failures
        .iter()
        .filter(|(_, m)| m.starts_with(NO_PROGRESS))
        .map(|&(i, _)| i)
        .collect();
    assert_eq!(stuck.len(), 4, "{:?}", check.failures);
    // Nothing else went wrong: both callers' gradients still match their references.
    assert_eq!(stuck.len(), check.failures.len(), "{:?}", check.failures);
}

#[test]
fn check_seed_runs_both_cases_and_counts_them() {
    let cfg = StressConfig {
        threads: vec![1, 2, 4],
        reentrant_every: 2,
        unequal_every: 4,
        ..StressConfig::default()
    };
    let configs = configs(&cfg.threads);
    let watchdog = Watchdog::start(1, DEADLINE);
    let mut summary = Summary::new(configs.clone());
    for seed in 0..4 {
        check_seed(seed, &cfg, &configs, &watchdog.slot(0), &mut summary);
    }
    assert!(summary.passed(), "{summary}");
    assert_eq!(summary.reentrant_checks, 2);
    assert_eq!(summary.unequal_checks, 1);
    assert!(summary.inner_passes >= 2 * configs.len() as u64);
    assert_eq!(summary.b_passes, 4 * 2 * 3);
    let table = summary.to_string();
    assert!(table.contains("re-entrant checks"), "{table}");
    assert!(table.contains("unequal-caller checks"), "{table}");
}
