//! The watchdog reports a run past its deadline as a hang, with its seed and the executor
//! state the tracking task recorded, instead of killing it silently.

use backflow::Scheduler;
use backflow_stress::exec_graph::{ExecFault, ExecGraph, TrackedTask};
use backflow_stress::exec_oracle::run_exec;
use backflow_stress::{run_with_deadline, GraphSpec, RunConfig, Watchdog};
use std::sync::Arc;
use std::time::Duration;

fn stalled_graph() -> (ExecGraph, u32) {
    let graph = ExecGraph::generate(
        42,
        &GraphSpec {
            nodes: 100,
            ..GraphSpec::default()
        },
    );
    (graph, 50)
}

#[test]
fn a_stalled_run_is_reported_with_its_counters() {
    let (graph, at) = stalled_graph();
    let watchdog = Watchdog::start(1, Duration::from_millis(100));
    let cfg = RunConfig {
        scheduler: Scheduler::Parallel,
        threads: 4,
        ..RunConfig::reference()
    };
    let stall = [(at, ExecFault::Stall(Duration::from_millis(1500)))];
    let result = run_exec(
        &graph,
        &cfg,
        &stall,
        false,
        &watchdog.slot(0),
        "seed 42 exec graph",
    );
    assert!(result.is_ok(), "the stalled run still finishes: {result:?}");
    let hangs = watchdog.hangs();
    assert_eq!(hangs.len(), 1, "{hangs:?}");
    let report = hangs[0].to_string();
    assert!(
        report.contains("seed 42") && report.contains("parallel/4/deterministic"),
        "{report}"
    );
    assert!(report.contains(&format!("node {at} (running)")), "{report}");
    assert!(report.contains("contributions sent"), "{report}");
}

#[test]
fn run_with_deadline_reports_instead_of_waiting_forever() {
    let (graph, at) = stalled_graph();
    let (plan, ids) = graph.plan();
    let task = Arc::new(TrackedTask::new(
        &graph,
        &plan,
        ids,
        &[(at, ExecFault::Stall(Duration::from_secs(2)))],
    ));
    let seeds = plan
        .seeds()
        .iter()
        .map(|_| {
            Some(backflow_stress::exec_graph::ExecGrad {
                value: 1.0,
                drop_later: false,
            })
        })
        .collect();
    let (probe, run) = (Arc::clone(&task), Arc::clone(&task));
    let hang = run_with_deadline(
        "seed 42 kahn",
        Duration::from_millis(100),
        Some(Arc::new(move || probe.dump())),
        move || backflow_stress::exec::execute(Arc::new(plan), run, seeds, &Default::default()),
    )
    .unwrap_err();
    assert!(hang.label.contains("seed 42"));
    assert!(hang.dump.contains("1 running"), "{}", hang.dump);
    assert!(hang.dump.contains("pending"), "{}", hang.dump);
}

#[test]
fn runs_within_the_deadline_are_not_reported() {
    let (graph, _) = stalled_graph();
    let watchdog = Watchdog::start(1, Duration::from_secs(10));
    for threads in [1, 2, 16] {
        let cfg = RunConfig {
            scheduler: Scheduler::Parallel,
            threads,
            ..RunConfig::reference()
        };
        run_exec(&graph, &cfg, &[], false, &watchdog.slot(0), "seed 42").unwrap();
    }
    assert!(watchdog.hangs().is_empty());
}
