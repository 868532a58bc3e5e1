//! `backflow scale`: the standard workloads (W1–W4, W6) at several thread counts, each
//! measurement repeated and reduced to its median; prints a table and writes JSON and an
//! SVG plot of speedup against threads. `measure.rs` measures, `plot.rs` draws.
//!
//! `Dfs` and `Kahn` run on the calling thread only, so they are measured once each, as
//! baselines; `Parallel` runs at every thread count. Speedup and efficiency are taken
//! against `Parallel` at one thread (`T1`): speedup `T1 / TP`, efficiency `T1 / (P·TP)`.
//!
//! Peak memory (W4 only) is the process's resident high-water mark (`VmHWM` in
//! `/proc/self/status`), so it counts everything the process holds, the built graph
//! included. Before each W4 measurement the mark is reset to the current RSS by writing
//! `5` to `/proc/self/clear_refs`; where that is refused the mark is never lowered and
//! each figure is the peak so far. W4 also reports the graph's memory per node
//! (`graph_bytes_per_node`): the resident set after building the graph minus before, over
//! its node count.

mod measure;
mod plot;

use super::args;
use super::CliResult;
use backflow::Accumulation;
use backflow_app::workloads::WorkloadId;
use clap::Args;
use measure::{default_threads, measure_all, ratios, Row};
use serde_json::json;
use std::path::Path;

/// Flags of `backflow scale`.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct ScaleArgs {
    /// Workloads to run, comma-separated: w1, w2, w3, w4, w6 (see benches/WORKLOADS.md).
    #[arg(long, value_delimiter = ',', default_value = "w1,w2,w3", value_parser = args::workload)]
    workload: Vec<WorkloadId>,
    /// Thread counts for `Parallel`, comma-separated; 0 means all cores [default: powers of
    /// two up to the cores present, plus the core count]. One thread is always measured, as
    /// the base.
    #[arg(long, value_delimiter = ',', value_parser = args::threads)]
    threads: Option<Vec<usize>>,
    /// Timed repetitions of each measurement (after one untimed warm-up); the median is
    /// kept (1 to 10000).
    #[arg(long, default_value_t = 7, value_parser = args::count(1, 10_000))]
    reps: usize,
    /// Sum shared gradients in arrival order (`Accumulation::Fast`) instead of the
    /// deterministic order.
    #[arg(long)]
    fast: bool,
    /// Writes the results as JSON here, checked writable before the run (an empty path
    /// skips it).
    #[arg(long, default_value = "scale.json")]
    json: String,
    /// Writes the speedup plot as SVG here, checked writable before the run (an empty path
    /// skips it).
    #[arg(long, default_value = "scale.svg")]
    svg: String,
}

/// Runs the selected workloads and reports them.
pub fn run(args: ScaleArgs) -> CliResult {
    for (flag, path) in [("--json", &args.json), ("--svg", &args.svg)] {
        if !path.is_empty() {
            args::check_writable(flag, Path::new(path))?;
        }
    }
    let mut workloads = args.workload.clone();
    workloads.dedup();
    let cores = backflow::default_threads();
    let mut requested = args
        .threads
        .clone()
        .unwrap_or_else(|| default_threads(cores));
    requested.push(1);
    // Rows are labelled, and efficiency divided, by the count that ran.
    let threads = args::threads_as_run("--threads", &requested);
    let reps = args.reps;
    let accumulation = if args.fast {
        Accumulation::Fast
    } else {
        Accumulation::Deterministic
    };
    let rows = measure_all(&workloads, &threads, reps, accumulation)?;

    print_table(&rows, cores, reps, accumulation);
    if !args.json.is_empty() {
        write_json(Path::new(&args.json), &rows, cores, reps, accumulation)
            .map_err(|e| format!("--json '{}': {e}", args.json))?;
        println!("wrote {}", args.json);
    }
    if !args.svg.is_empty() {
        plot::write_svg(Path::new(&args.svg), &rows, cores)
            .map_err(|e| format!("--svg '{}': {e}", args.svg))?;
        println!("wrote {}", args.svg);
    }
    Ok(())
}

fn print_table(rows: &[Row], cores: usize, reps: usize, accumulation: Accumulation) {
    println!(
        "backflow {}: {cores} cores, median of {reps} runs, {accumulation:?} accumulation, \
         allocator: {}",
        env!("CARGO_PKG_VERSION"),
        super::allocator()
    );
    println!(
        "speedup and efficiency are against parallel at 1 thread; t/kahn is the time over Kahn's"
    );
    println!(
        "{:<8} {:<9} {:>7} {:>12} {:>10} {:>8} {:>6} {:>7} {:>16}",
        "workload",
        "scheduler",
        "threads",
        "median ms",
        "ns/node",
        "speedup",
        "eff",
        "t/kahn",
        "peak MiB (+pass)"
    );
    for row in rows {
        let r = ratios(row, rows);
        println!(
            "{:<8} {:<9} {:>7} {:>12.3} {:>10.1} {:>8.2} {:>6.2} {:>7} {:>16}",
            row.workload,
            row.scheduler.name(),
            row.threads,
            row.median() * 1e3,
            row.median() * 1e9 / row.nodes as f64,
            r.speedup,
            r.efficiency,
            r.to_kahn.map_or("-".into(), |k| format!("{k:.2}")),
            match (row.peak_mib, row.base_mib) {
                (Some(peak), Some(base)) => format!("{peak:.0} (+{:.0})", peak - base),
                (Some(peak), None) => format!("{peak:.0}"),
                _ => "-".into(),
            },
        );
    }
}

fn write_json(
    path: &Path,
    rows: &[Row],
    cores: usize,
    reps: usize,
    accumulation: Accumulation,
) -> CliResult {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    let results: Vec<_> = rows
        .iter()
        .map(|row| {
            let r = ratios(row, rows);
            json!({
                "workload": row.workload,
                "scheduler": row.scheduler.name(),
                "threads": row.threads,
                "nodes": row.nodes,
                "median_ms": row.median() * 1e3,
                "min_ms": row.times[0] * 1e3,
                "max_ms": row.times[row.times.len() - 1] * 1e3,
                "times_ms": row.times.iter().map(|t| t * 1e3).collect::<Vec<_>>(),
                "ns_per_node": row.median() * 1e9 / row.nodes as f64,
                "speedup": finite(r.speedup),
                "efficiency": finite(r.efficiency),
                "time_over_kahn": r.to_kahn.and_then(finite),
                "rss_before_mib": row.base_mib,
                "peak_rss_mib": row.peak_mib,
                "graph_bytes_per_node": row.graph_bytes_per_node,
            })
        })
        .collect();
    let doc = json!({
        "backflow": env!("CARGO_PKG_VERSION"),
        "machine": { "cores": cores, "cpu": cpu },
        "reps": reps,
        "accumulation": format!("{accumulation:?}"),
        "peak_rss_note": "process-wide VmHWM, reset per measurement where /proc/self/clear_refs allows",
        "results": results,
    });
    backflow::io::write_atomic(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}

/// JSON has no NaN: a missing baseline becomes null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}
