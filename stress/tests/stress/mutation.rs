//! A deliberately broken accumulation (executor-level gradients that drop the later of
//! two contributions) is caught by the stress run, which names a seed that reproduces it.

use backflow_stress::exec_oracle::check_exec;
use backflow_stress::{check_seed, configs, run, StressConfig, Summary, Watch};

#[test]
fn the_stress_run_catches_a_dropped_contribution_and_names_the_seed() {
    let cfg = StressConfig {
        graphs: 40,
        seed: 500,
        drop_later: true,
        jobs: 2,
        ..StressConfig::default()
    };
    let summary = run(&cfg, &|_| {});
    assert!(!summary.passed());
    let seed = summary.failing_seed().expect("a failing seed");
    assert!((500..540).contains(&seed));
    let failure = summary.failures.iter().find(|f| f.seed == seed).unwrap();
    assert_eq!(failure.phase, "exec");
    assert!(
        failure.message.contains("differs from the reference"),
        "{failure}"
    );
    assert!(summary.to_string().contains(&format!("FAIL seed {seed}")));

    // The seed alone reproduces it, and the same seed passes without the mutation.
    let configs = configs(&cfg.threads);
    let mut alone = Summary::new(configs.clone());
    check_seed(seed, &cfg, &configs, &Watch::none(), &mut alone);
    assert!(!alone.failures.is_empty());
    let mut healthy = Summary::new(configs.clone());
    check_seed(
        seed,
        &StressConfig {
            drop_later: false,
            ..cfg.clone()
        },
        &configs,
        &Watch::none(),
        &mut healthy,
    );
    assert!(healthy.failures.is_empty(), "{healthy}");
}

#[test]
fn bitwise_agreement_alone_would_miss_it() {
    // In Deterministic mode every scheduler drops the same contributions, so the runs agree
    // with each other: only the executor-independent reference exposes the bug.
    let spec = backflow_stress::GraphSpec {
        nodes: 100,
        ..Default::default()
    };
    let check = check_exec(3, &spec, &configs(&[1, 4, 16]), 0, true, &Watch::none());
    assert!(!check.mismatches.is_empty());
    assert!(
        check
            .mismatches
            .iter()
            .all(|(_, m)| !m.contains("not bitwise equal")),
        "{:?}",
        check.mismatches
    );
}
