//! Helpers shared by the integration tests.

use backflow::{BackwardOptions, Scheduler};

/// Every scheduler, with `Parallel` at 2 and 4 threads.
pub fn configs() -> Vec<BackwardOptions> {
    let base = BackwardOptions::new();
    Scheduler::ALL
        .into_iter()
        .flat_map(|s| match s {
            Scheduler::Parallel => vec![
                base.clone().scheduler(s).threads(2),
                base.clone().scheduler(s).threads(4),
            ],
            _ => vec![base.clone().scheduler(s)],
        })
        .collect()
}
