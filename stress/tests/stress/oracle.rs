//! The stress harness's generator and differential oracle: determinism, every
//! configuration against the reference, finite differences, hubs with thousands of
//! consumers, and a short end-to-end stress run.

use backflow_stress::exec_oracle::check_exec;
use backflow_stress::oracle::{check_recipe, finite_differences};
use backflow_stress::{configs, run, GraphSpec, Recipe, StressConfig, Watch};

const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

#[test]
fn same_seed_same_graph() {
    let spec = GraphSpec::default();
    for seed in 0..20 {
        let (a, b) = (Recipe::generate(seed, &spec), Recipe::generate(seed, &spec));
        assert_eq!(a, b, "seed {seed}");
        let (ga, gb) = (a.build::<f32>().unwrap(), b.build::<f32>().unwrap());
        let values = |g: &backflow_stress::build::TensorGraph<f32>| -> Vec<Vec<u32>> {
            g.roots
                .iter()
                .chain(&g.grad_outputs)
                .map(|t| t.data().iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        assert_eq!(values(&ga), values(&gb), "seed {seed}");
    }
    assert_ne!(Recipe::generate(1, &spec), Recipe::generate(2, &spec));
}

#[test]
fn every_configuration_matches_the_reference_in_f32() {
    let configs = configs(&THREADS);
    for seed in 0..40 {
        let recipe = Recipe::generate(
            seed,
            &GraphSpec {
                nodes: 40 + seed as usize,
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
        assert_eq!(check.runs.len(), configs.len());
        assert!(check.nodes >= recipe.ops.len());
    }
}

#[test]
fn f64_gradients_match_finite_differences() {
    let configs = configs(&[1, 4]);
    for seed in 0..30 {
        let recipe = Recipe::generate(
            seed,
            &GraphSpec {
                nodes: 20,
                ..GraphSpec::default()
            },
        );
        let check = check_recipe::<f64>(&recipe, &configs, f64::EPSILON, &Watch::none(), "test");
        assert!(
            check.mismatches.is_empty(),
            "seed {seed}: {:?}",
            check.mismatches
        );
        assert_eq!(
            finite_differences(&recipe, &check.reference, 3),
            None,
            "seed {seed}"
        );
    }
}

#[test]
fn finite_differences_catch_a_wrong_gradient() {
    let recipe = Recipe::generate(
        3,
        &GraphSpec {
            nodes: 20,
            ..GraphSpec::default()
        },
    );
    let check = check_recipe::<f64>(
        &recipe,
        &configs(&[1]),
        f64::EPSILON,
        &Watch::none(),
        "test",
    );
    let mut wrong = check.reference.clone();
    let g = wrong.iter_mut().flatten().next().unwrap();
    g[0] = g[0] * 1.01 + 0.01;
    assert!(finite_differences(&recipe, &wrong, 3).is_some());
}

#[test]
fn hub_tensor_with_thousands_of_consumers() {
    let spec = GraphSpec {
        nodes: 2400,
        width: 200,
        hubs: 1,
        hub_share: 0.6,
        ..GraphSpec::default()
    };
    let recipe = Recipe::generate(11, &spec);
    assert!(
        recipe.max_fan_in() >= 1000,
        "fan-in {}",
        recipe.max_fan_in()
    );
    let check = check_recipe::<f32>(
        &recipe,
        &configs(&THREADS),
        f32::EPSILON as f64,
        &Watch::none(),
        "hub",
    );
    assert!(check.mismatches.is_empty(), "{:?}", check.mismatches);

    // The executor-level graph, with one hub receiving thousands of contributions.
    let exec = GraphSpec {
        nodes: 6000,
        width: 500,
        hubs: 1,
        hub_share: 0.5,
        ..GraphSpec::default()
    };
    let check = check_exec(5, &exec, &configs(&THREADS), 0, false, &Watch::none());
    assert!(check.mismatches.is_empty(), "{:?}", check.mismatches);
}

#[test]
fn exec_graphs_match_the_reference() {
    let configs = configs(&THREADS);
    for seed in 0..100 {
        let spec = GraphSpec {
            nodes: 20 + seed as usize * 3,
            ..GraphSpec::default()
        };
        let check = check_exec(seed, &spec, &configs, 0, false, &Watch::none());
        assert!(
            check.mismatches.is_empty(),
            "seed {seed}: {:?}",
            check.mismatches
        );
    }
}

#[test]
fn a_short_stress_run_passes() {
    let cfg = StressConfig {
        graphs: 300,
        seed: 1000,
        fault_rate: 0.05,
        callers_every: 16,
        f64_every: 8,
        ..StressConfig::default()
    };
    let summary = run(&cfg, &|_| {});
    assert!(summary.passed(), "{summary}");
    assert_eq!(summary.graphs, 300);
    assert!(summary.injected > 0 && summary.caught == summary.injected);
    assert!(summary.fd_checks > 0 && summary.caller_checks > 0);
    assert!(summary.runs.iter().all(|&r| r >= 600), "{:?}", summary.runs);
}
