//! Fault injection: backward functions that panic or return `Err` at random nodes must
//! give an `Err` under every configuration, never hang, lose no other caller's gradients,
//! and leave the engine working.

use backflow::{BackwardOptions, Scheduler};
use backflow_stress::callers::{check_callers, CallersCheck};
use backflow_stress::exec_oracle::check_exec;
use backflow_stress::faults::{check_faults, quiet_injected_panics};
use backflow_stress::oracle::{check_recipe, run_once, RunConfig};
use backflow_stress::recipe::FaultKind;
use backflow_stress::{configs, GraphSpec, Recipe, Watch};

const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

#[test]
fn every_injected_fault_becomes_an_err_and_later_runs_pass() {
    let configs = configs(&THREADS);
    for seed in 0..25 {
        let recipe = Recipe::generate(
            seed,
            &GraphSpec {
                nodes: 70,
                ..GraphSpec::default()
            },
        );
        let check = check_recipe::<f32>(
            &recipe,
            &configs,
            f32::EPSILON as f64,
            &Watch::none(),
            "test",
        );
        assert!(
            check.mismatches.is_empty(),
            "seed {seed}: {:?}",
            check.mismatches
        );
        let faults = check_faults::<f32>(
            &recipe,
            seed,
            1 + seed as usize % 3,
            &configs,
            &check.reference,
            &Watch::none(),
        );
        assert!(
            faults.failures.is_empty(),
            "seed {seed}: {:?}",
            faults.failures
        );
        assert_eq!(faults.injected, configs.len() as u64);
        assert_eq!(faults.caught, faults.injected);
    }
}

#[test]
fn a_fault_names_its_op_and_the_next_backward_works() {
    quiet_injected_panics();
    let recipe = Recipe::generate(
        4,
        &GraphSpec {
            nodes: 90,
            ..GraphSpec::default()
        },
    );
    for kind in [FaultKind::Panic, FaultKind::Error] {
        let mut faulty = recipe.clone();
        faulty.faults = vec![(10, kind)];
        let g = faulty.build::<f32>().unwrap();
        let opts = BackwardOptions::new()
            .scheduler(Scheduler::Parallel)
            .threads(8);
        let err = backflow::backward(
            &g.roots.iter().collect::<Vec<_>>(),
            &g.grad_outputs.iter().collect::<Vec<_>>(),
            &opts,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("stress_fault") && err.contains("injected fault"),
            "{err}"
        );
        if kind == FaultKind::Panic {
            assert!(err.contains("panicked"), "{err}");
        }
        let clean = recipe.build::<f32>().unwrap();
        let want = run_once(&clean, &RunConfig::reference(), true, true).unwrap();
        let cfg = RunConfig {
            scheduler: Scheduler::Parallel,
            threads: 8,
            ..RunConfig::reference()
        };
        assert_eq!(run_once(&clean, &cfg, false, false).unwrap(), want);
    }
}

#[test]
fn executor_level_faults_are_caught() {
    let configs = configs(&THREADS);
    for seed in 0..60 {
        let spec = GraphSpec {
            nodes: 150,
            ..GraphSpec::default()
        };
        let check = check_exec(
            seed,
            &spec,
            &configs,
            1 + seed as usize % 3,
            false,
            &Watch::none(),
        );
        assert!(
            check.mismatches.is_empty(),
            "seed {seed}: {:?}",
            check.mismatches
        );
        assert_eq!(check.caught, configs.len() as u64);
    }
}

/// Runs `healthy` callers plus `failing` fault-injected ones on graphs sharing leaves, for
/// seeds 0..12, asserts that no check failed, and hands each check to `more`.
fn callers(healthy: usize, failing: usize, more: impl Fn(&CallersCheck)) {
    let configs = configs(&THREADS);
    let spec = GraphSpec {
        nodes: 80,
        ..GraphSpec::default()
    };
    for seed in 0..12 {
        let check = check_callers::<f32>(
            seed,
            &spec,
            healthy,
            failing,
            &configs,
            f32::EPSILON as f64,
            &Watch::none(),
        );
        assert!(
            check.failures.is_empty(),
            "seed {seed}: {:?}",
            check.failures
        );
        more(&check);
    }
}

#[test]
fn concurrent_callers_on_shared_leaves_sum_their_gradients() {
    callers(6, 0, |check| assert_eq!(check.runs, 6));
}

#[test]
fn failing_callers_lose_no_other_callers_gradients() {
    callers(5, 3, |check| {
        assert_eq!((check.injected, check.caught), (3, 3))
    });
}
