//! Runs backward passes over one standard workload, for instruction counts per node under
//! callgrind (the difference between two pass counts cancels the graph's construction):
//!
//! ```text
//! cargo build --release --example node_cost
//! for n in 1 3; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/node_cost w1 kahn 1 $n; done
//! # instructions per node = (Ir(3) - Ir(1)) / (2 * nodes)
//! ```
//!
//! Arguments: workload (`w1`, `w2`, `w3`, `w4`, `w6`), scheduler (`dfs`, `kahn`,
//! `parallel`), threads, passes.

use backflow::{BackwardOptions, Scheduler};
use backflow_app::workloads::WorkloadId;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let workload = WorkloadId::parse(&arg(0, "w1")).ok_or("workload: w1, w2, w3, w4 or w6")?;
    let scheduler: Scheduler = arg(1, "kahn").parse()?;
    let threads: usize = arg(2, "1").parse()?;
    let passes: usize = arg(3, "1").parse()?;
    let w = workload.build()?;
    let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
    let mut total = std::time::Duration::ZERO;
    for _ in 0..passes {
        total += w.time_backward(&opts)?;
    }
    println!(
        "{} {} x{threads}: {passes} passes over {} nodes, {:.1} ns/node",
        w.name,
        scheduler.name(),
        w.nodes,
        total.as_nanos() as f64 / (passes * w.nodes) as f64
    );
    Ok(())
}
