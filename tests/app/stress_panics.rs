//! A stress check that panics is a reported failure of its seed, not a lost worker: the
//! run returns (it used to wait forever), fails, and names the seed; nothing is reported
//! as hung.

use backflow_stress::{run, StressConfig};

#[test]
fn a_panicking_check_is_a_failure_with_its_seed() {
    // A NaN fault rate makes every graph's draw panic (`random_bool(NaN)`); the command
    // line rejects it, the library does not.
    let cfg = StressConfig {
        seed: 40,
        graphs: 3,
        threads: vec![1, 2],
        jobs: 2,
        fault_rate: f64::NAN,
        ..StressConfig::default()
    };
    let summary = run(&cfg, &|_| {});
    assert!(!summary.passed(), "{summary}");
    assert!(summary.hangs.is_empty(), "a panic is not a hang: {summary}");
    assert_eq!(summary.failures.len(), 3, "{summary}");
    assert_eq!(summary.graphs, 3, "each panicked graph counts as checked");
    assert!(summary.failures.iter().all(|f| f.phase == "panic"));
    assert_eq!(summary.failing_seed(), Some(40));
    assert!(
        summary.failures[0].message.contains("panicked"),
        "{}",
        summary.failures[0]
    );
}

#[test]
fn a_run_with_sound_settings_still_passes() {
    let cfg = StressConfig {
        graphs: 2,
        threads: vec![1, 2],
        jobs: 1,
        ..StressConfig::default()
    };
    let summary = run(&cfg, &|_| {});
    assert!(summary.passed(), "{summary}");
}
