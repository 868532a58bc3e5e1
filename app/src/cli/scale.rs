//! `backflow scale`: the standard workloads (W1–W4) at several thread counts, each
//! measurement repeated and reduced to its median; prints a table and writes JSON and an
//! SVG plot of speedup against threads.
//!
//! `Dfs` and `Kahn` run on the calling thread only, so they are measured once each, as
//! baselines; `Parallel` runs at every thread count. Speedup and efficiency are taken
//! against `Parallel` at one thread (`T1`): speedup `T1 / TP`, efficiency `T1 / (P·TP)`.
//!
//! Peak memory (W4 only) is the process's resident high-water mark (`VmHWM` in
//! `/proc/self/status`), so it counts everything the process holds, the built graph
//! included. Before each W4 measurement the mark is reset to the current RSS by writing
//! `5` to `/proc/self/clear_refs`; where that is refused the mark is never lowered and
//! each figure is the peak so far.

use super::CliResult;
use backflow::{Accumulation, BackwardOptions, Scheduler};
use backflow_app::workloads::{Workload, WorkloadId};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Flags of `backflow scale`.
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Workloads to run, comma-separated: w1, w2, w3, w4.
    #[arg(long, default_value = "w1,w2,w3")]
    workload: String,
    /// Thread counts for `Parallel`, comma-separated [default: powers of two up to the
    /// cores present, plus the core count]. One thread is always measured, as the base.
    #[arg(long)]
    threads: Option<String>,
    /// Timed repetitions of each measurement (after one untimed warm-up); the median is kept.
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Sum shared gradients in arrival order (`Accumulation::Fast`) instead of the
    /// deterministic order.
    #[arg(long)]
    fast: bool,
    /// Writes the results as JSON here (an empty path skips it).
    #[arg(long, default_value = "scale.json")]
    json: String,
    /// Writes the speedup plot as SVG here (an empty path skips it).
    #[arg(long, default_value = "scale.svg")]
    svg: String,
}

/// One measured configuration.
#[derive(Clone, Debug)]
struct Row {
    workload: &'static str,
    scheduler: Scheduler,
    threads: usize,
    nodes: usize,
    /// Every timed repetition, in seconds, sorted.
    times: Vec<f64>,
    /// Process-wide resident set before the runs, graph included, MiB (W4 only).
    base_mib: Option<f64>,
    /// Process-wide resident high-water mark after the runs, MiB (W4 only).
    peak_mib: Option<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        self.times[self.times.len() / 2]
    }
}

/// Ratios of one row to its workload's baselines.
struct Ratios {
    speedup: f64,
    efficiency: f64,
    to_kahn: Option<f64>,
}

fn ratios(row: &Row, rows: &[Row]) -> Ratios {
    let find = |s: Scheduler, p: usize| {
        rows.iter()
            .find(|r| r.workload == row.workload && r.scheduler == s && r.threads == p)
            .map(Row::median)
    };
    let t1 = find(Scheduler::Parallel, 1).unwrap_or(f64::NAN);
    let speedup = t1 / row.median();
    Ratios {
        speedup,
        efficiency: speedup / row.threads as f64,
        to_kahn: find(Scheduler::Kahn, 1).map(|k| row.median() / k),
    }
}

/// Parses a comma-separated list of positive thread counts.
fn parse_threads(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(format!("--threads: `{s}` is not a positive thread count")),
            Ok(n) => Ok(n),
        })
        .collect()
}

/// Powers of two up to `cores`, plus `cores` itself.
fn default_threads(cores: usize) -> Vec<usize> {
    let mut t: Vec<usize> = std::iter::successors(Some(1usize), |&p| p.checked_mul(2))
        .take_while(|&p| p <= cores)
        .collect();
    if t.last() != Some(&cores) && cores > 0 {
        t.push(cores);
    }
    t
}

/// Reads a `kB` field (`VmHWM`, `VmRSS`) of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Lowers the high-water mark to the current RSS; false where the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs one configuration: a warm-up, then `reps` timed backward passes.
fn measure(
    w: &Workload,
    opts: &BackwardOptions,
    reps: usize,
    bar: &ProgressBar,
) -> Result<Vec<f64>, backflow::Error> {
    w.time_backward(opts)?;
    bar.inc(1);
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t: Duration = w.time_backward(opts)?;
        times.push(t.as_secs_f64());
        bar.inc(1);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Runs the selected workloads and reports them.
pub fn run(args: ScaleArgs) -> CliResult {
    let workloads = args
        .workload
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            WorkloadId::parse(s)
                .ok_or_else(|| format!("--workload: unknown workload `{s}` (w1, w2, w3, w4)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if workloads.is_empty() {
        return Err("--workload: no workload selected".into());
    }
    let cores = backflow::default_threads();
    let mut threads = match &args.threads {
        Some(list) => parse_threads(list)?,
        None => default_threads(cores),
    };
    threads.push(1);
    threads.sort_unstable();
    threads.dedup();
    let reps = args.reps.max(1);
    let accumulation = if args.fast {
        Accumulation::Fast
    } else {
        Accumulation::Deterministic
    };

    let configs: Vec<(Scheduler, usize)> = [(Scheduler::Dfs, 1), (Scheduler::Kahn, 1)]
        .into_iter()
        .chain(threads.iter().map(|&p| (Scheduler::Parallel, p)))
        .collect();
    let total = (workloads.len() * configs.len() * (reps + 1)) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} runs  {msg}  ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for id in &workloads {
        bar.set_prefix(id.name());
        bar.set_message("building");
        let w = id.build()?;
        for &(scheduler, p) in &configs {
            bar.set_message(format!("{} x{p}", scheduler.name()));
            let opts = BackwardOptions::new()
                .scheduler(scheduler)
                .threads(p)
                .accumulation(accumulation);
            let track_memory = *id == WorkloadId::W4;
            let base_mib = if track_memory {
                reset_peak();
                status_mib("VmRSS")
            } else {
                None
            };
            let times = measure(&w, &opts, reps, &bar)?;
            rows.push(Row {
                workload: w.name,
                scheduler,
                threads: p,
                nodes: w.nodes,
                times,
                base_mib,
                peak_mib: if track_memory {
                    status_mib("VmHWM")
                } else {
                    None
                },
            });
        }
        bar.set_message("dropping graph");
        drop(w);
    }
    bar.finish_and_clear();

    print_table(&rows, cores, reps, accumulation);
    if !args.json.is_empty() {
        write_json(Path::new(&args.json), &rows, cores, reps, accumulation)?;
        println!("wrote {}", args.json);
    }
    if !args.svg.is_empty() {
        write_svg(Path::new(&args.svg), &rows, cores)?;
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
    std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}

/// JSON has no NaN: a missing baseline becomes null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Speedup of `Parallel` against threads, one curve per workload, with the ideal line.
fn write_svg(path: &Path, rows: &[Row], cores: usize) -> CliResult {
    use plotters::prelude::*;
    let parallel: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scheduler == Scheduler::Parallel)
        .collect();
    let max_p = parallel.iter().map(|r| r.threads).max().unwrap_or(1).max(2) as f64;
    let max_s = parallel
        .iter()
        .map(|r| ratios(r, rows).speedup)
        .filter(|s| s.is_finite())
        .fold(max_p, f64::max);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("backflow backward: speedup vs threads ({cores} cores)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_p * 1.05, 0.0..max_s * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("speedup over parallel at 1 thread")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, 1.0), (max_p, max_p)],
            BLACK.mix(0.5).stroke_width(1),
        ))?
        .label("ideal")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
    let mut names: Vec<&str> = parallel.iter().map(|r| r.workload).collect();
    names.dedup();
    for (i, name) in names.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = parallel
            .iter()
            .filter(|r| r.workload == name)
            .map(|r| (r.threads as f64, ratios(r, rows).speedup))
            .filter(|(_, s)| s.is_finite())
            .collect();
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threads_cover_one_core_and_odd_counts() {
        assert_eq!(default_threads(1), vec![1]);
        assert_eq!(default_threads(2), vec![1, 2]);
        assert_eq!(default_threads(12), vec![1, 2, 4, 8, 12]);
    }

    #[test]
    fn thread_lists_parse_and_reject_zero() {
        assert_eq!(parse_threads("1, 2,4").unwrap(), vec![1, 2, 4]);
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("x").is_err());
    }
}
