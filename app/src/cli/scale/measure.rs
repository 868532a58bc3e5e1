//! The measuring half of `backflow scale`: every workload under `Dfs`, `Kahn` and
//! `Parallel` at each thread count, a warm-up then timed repetitions, and the ratios of
//! each row to its workload's baselines.

use backflow::{Accumulation, BackwardOptions, Scheduler};
use backflow_app::workloads::{Workload, WorkloadId};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// One measured configuration.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload's short name (`w1` …).
    pub workload: &'static str,
    /// The scheduler measured.
    pub scheduler: Scheduler,
    /// Its thread count (1 for `Dfs` and `Kahn`).
    pub threads: usize,
    /// Graph nodes the pass visits.
    pub nodes: usize,
    /// Every timed repetition, in seconds, sorted.
    pub times: Vec<f64>,
    /// Process-wide resident set before the runs, graph included, MiB (W4 only).
    pub base_mib: Option<f64>,
    /// Process-wide resident high-water mark after the runs, MiB (W4 only).
    pub peak_mib: Option<f64>,
    /// Resident set grown by building the graph, over its node count, bytes (W4 only).
    pub graph_bytes_per_node: Option<f64>,
}

impl Row {
    /// The median repetition, in seconds.
    pub fn median(&self) -> f64 {
        self.times[self.times.len() / 2]
    }
}

/// Ratios of one row to its workload's baselines.
pub struct Ratios {
    /// `Parallel` at one thread over this row's time.
    pub speedup: f64,
    /// Speedup over the thread count.
    pub efficiency: f64,
    /// This row's time over `Kahn`'s, where Kahn was measured.
    pub to_kahn: Option<f64>,
}

/// The ratios of `row` to the baselines among `rows`.
pub fn ratios(row: &Row, rows: &[Row]) -> Ratios {
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

/// Powers of two up to `cores`, plus `cores` itself.
pub fn default_threads(cores: usize) -> Vec<usize> {
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

/// Measures every workload under `Dfs` and `Kahn` once and under `Parallel` at each of
/// `threads` (sorted, with 1 among them), `reps` timed repetitions each, with a progress bar.
pub fn measure_all(
    workloads: &[WorkloadId],
    threads: &[usize],
    reps: usize,
    accumulation: Accumulation,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
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
    for id in workloads {
        bar.set_prefix(id.name());
        bar.set_message("building");
        let track_memory = *id == WorkloadId::W4;
        let before_build = status_mib("VmRSS").filter(|_| track_memory);
        let w = id.build()?;
        let graph_bytes_per_node = before_build
            .zip(status_mib("VmRSS"))
            .map(|(before, after)| (after - before) * 1024.0 * 1024.0 / w.nodes as f64);
        for &(scheduler, p) in &configs {
            bar.set_message(format!("{} x{p}", scheduler.name()));
            let opts = BackwardOptions::new()
                .scheduler(scheduler)
                .threads(p)
                .accumulation(accumulation);
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
                graph_bytes_per_node,
            });
        }
        bar.set_message("dropping graph");
        drop(w);
    }
    bar.finish_and_clear();
    Ok(rows)
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
}
