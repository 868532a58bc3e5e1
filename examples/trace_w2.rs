//! Traces one backward pass of W2 (`branches` × `depth` layers of `h = tanh(h @ W)`,
//! x `[32, 128]`, W `[128, 128]`) on the `Parallel` scheduler and writes the
//! Chrome/Perfetto trace-event JSON. Open it at <https://ui.perfetto.dev> (Open trace file),
//! or draw it with `python3 docs/trace_to_svg.py TRACE.json OUT.svg` (see docs/trace.md).
//!
//! Run: `cargo run --release --example trace_w2 -- [TRACE.json] [THREADS] [BRANCHES] [DEPTH]`
//! (defaults: `target/w2_trace.json`, 2 threads, 16 branches, 8 layers; the full W2 is
//! 64 branches). Expected output (the times vary):
//!
//! ```text
//! W2 16 branches x 8 layers: 415 nodes, backward on 2 threads in 2.7 ms
//! 415 spans written to target/w2_trace.json
//! ```

use backflow::{BackwardOptions, BackwardStats, Scheduler};
use backflow_app::workloads;
use std::time::Instant;

fn main() -> backflow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "target/w2_trace.json".into());
    let number = |i: usize, default: usize| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (threads, branches, depth) = (number(1, 2), number(2, 16), number(3, 8));

    let w = workloads::wide(branches, depth, 128, 32, 0)?;
    let opts = BackwardOptions::new()
        .scheduler(Scheduler::Parallel)
        .threads(threads);
    // A first pass starts the worker pool and warms the caches; the second is traced.
    w.time_backward(&opts)?;
    let stats = BackwardStats::new();
    let traced = opts.stats(stats.clone()).trace(&path).retain_graph(true);
    let start = Instant::now();
    w.loss.backward_with(&traced)?;
    let elapsed = start.elapsed();
    println!(
        "W2 {branches} branches x {depth} layers: {} nodes, backward on {threads} threads in {:.1} ms",
        w.nodes,
        elapsed.as_secs_f64() * 1e3
    );
    println!("{} spans written to {path}", stats.nodes_run());
    Ok(())
}
