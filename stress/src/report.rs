//! The result of a stress run: counts per configuration, failures with their seeds, hangs,
//! and the summary table the `stress` command prints.

use super::oracle::RunConfig;
use super::watchdog::Hang;
use std::fmt;
use std::time::Duration;

/// One failing check, with the seed that reproduces it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The graph's seed.
    pub seed: u64,
    /// Which check: `tensor`, `exec`, `faults`, `finite differences`, `callers`,
    /// `reentrant`, `unequal callers`, or `panic` (a check panicked).
    pub phase: &'static str,
    /// The configuration of the failing run, when it was one run.
    pub config: Option<String>,
    /// What differed.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} [{}]", self.seed, self.phase)?;
        if let Some(c) = &self.config {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Totals of a stress run (or of one worker's share of it).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The configurations, in the order of `runs` and `mismatches`.
    pub configs: Vec<RunConfig>,
    /// Graphs checked.
    pub graphs: u64,
    /// Tensor nodes over all tensor graphs.
    pub tensor_nodes: u64,
    /// Plan nodes over all executor-level graphs.
    pub exec_nodes: u64,
    /// Backward runs per configuration (tensor, executor-level and fault runs).
    pub runs: Vec<u64>,
    /// Mismatching runs per configuration.
    pub mismatches: Vec<u64>,
    /// Runs with injected faults.
    pub injected: u64,
    /// Of those, runs that returned the injected `Err`.
    pub caught: u64,
    /// Graphs checked against finite differences (f64).
    pub fd_checks: u64,
    /// Concurrent-callers checks, and the backward runs their callers made.
    pub caller_checks: u64,
    /// Backward runs made by concurrent callers.
    pub caller_runs: u64,
    /// Re-entrant checks (graphs whose hooks, callbacks or custom ops run nested passes).
    pub reentrant_checks: u64,
    /// Inner (nested) passes those checks ran, all depths.
    pub inner_passes: u64,
    /// Unequal-callers checks (an independent caller beside a blocked slow branch).
    pub unequal_checks: u64,
    /// Passes the independent caller B completed while caller A's branch blocked.
    pub b_passes: u64,
    /// Every failure, with its seed.
    pub failures: Vec<Failure>,
    /// Runs the watchdog reported as hung.
    pub hangs: Vec<Hang>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Summary {
    /// An empty summary over `configs`.
    pub fn new(configs: Vec<RunConfig>) -> Summary {
        let n = configs.len();
        Summary {
            configs,
            runs: vec![0; n],
            mismatches: vec![0; n],
            ..Summary::default()
        }
    }

    /// Counts runs made under the configurations `runs` (indices, repeats allowed) and
    /// records `mismatches` of graph `seed`; index `usize::MAX` marks a problem outside a run.
    pub fn record(
        &mut self,
        seed: u64,
        phase: &'static str,
        runs: &[usize],
        mismatches: Vec<(usize, String)>,
    ) {
        runs.iter().for_each(|&i| self.runs[i] += 1);
        for (i, message) in mismatches {
            let config = self.configs.get(i).map(|c| {
                self.mismatches[i] += 1;
                c.to_string()
            });
            self.failures.push(Failure {
                seed,
                phase,
                config,
                message,
            });
        }
    }

    /// Adds another summary's counts to this one.
    pub fn merge(&mut self, other: &Summary) {
        self.graphs += other.graphs;
        self.tensor_nodes += other.tensor_nodes;
        self.exec_nodes += other.exec_nodes;
        self.runs
            .iter_mut()
            .zip(&other.runs)
            .for_each(|(a, b)| *a += b);
        self.mismatches
            .iter_mut()
            .zip(&other.mismatches)
            .for_each(|(a, b)| *a += b);
        self.injected += other.injected;
        self.caught += other.caught;
        self.fd_checks += other.fd_checks;
        self.caller_checks += other.caller_checks;
        self.caller_runs += other.caller_runs;
        self.reentrant_checks += other.reentrant_checks;
        self.inner_passes += other.inner_passes;
        self.unequal_checks += other.unequal_checks;
        self.b_passes += other.b_passes;
        self.failures.extend(other.failures.iter().cloned());
        self.hangs.extend(other.hangs.iter().cloned());
    }

    /// Whether nothing failed and nothing hung.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.hangs.is_empty() && self.caught == self.injected
    }

    /// The seed of the first failure, if any.
    pub fn failing_seed(&self) -> Option<u64> {
        self.failures.iter().map(|f| f.seed).min()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs: u64 =
            self.runs.iter().sum::<u64>() + self.caller_runs + self.inner_passes + self.b_passes;
        let per = |n: u64| n as f64 / self.graphs.max(1) as f64;
        writeln!(f, "{:<28}{:>14}", "graphs", self.graphs)?;
        writeln!(
            f,
            "{:<28}{:>14}   ({:.1} per graph)",
            "tensor nodes",
            self.tensor_nodes,
            per(self.tensor_nodes)
        )?;
        writeln!(
            f,
            "{:<28}{:>14}   ({:.1} per graph)",
            "executor-level nodes",
            self.exec_nodes,
            per(self.exec_nodes)
        )?;
        writeln!(f, "{:<28}{:>14}", "backward runs", runs)?;
        writeln!(f, "{:<28}{:>14}", "mismatches", self.failures.len())?;
        writeln!(f, "{:<28}{:>14}", "hangs", self.hangs.len())?;
        writeln!(
            f,
            "{:<28}{:>14}",
            "injected faults caught",
            format!("{}/{}", self.caught, self.injected)
        )?;
        writeln!(
            f,
            "{:<28}{:>14}",
            "finite-difference checks", self.fd_checks
        )?;
        writeln!(
            f,
            "{:<28}{:>14}   ({} caller runs)",
            "concurrent-caller checks", self.caller_checks, self.caller_runs
        )?;
        writeln!(
            f,
            "{:<28}{:>14}   ({} inner passes)",
            "re-entrant checks", self.reentrant_checks, self.inner_passes
        )?;
        writeln!(
            f,
            "{:<28}{:>14}   ({} caller-B passes)",
            "unequal-caller checks", self.unequal_checks, self.b_passes
        )?;
        writeln!(
            f,
            "{:<28}{:>14.1} s",
            "wall time",
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<28}{:>14}{:>12}",
            "configuration", "runs", "mismatches"
        )?;
        for (i, c) in self.configs.iter().enumerate() {
            writeln!(
                f,
                "{:<28}{:>14}{:>12}",
                c.to_string(),
                self.runs[i],
                self.mismatches[i]
            )?;
        }
        for hang in &self.hangs {
            writeln!(f, "\n{hang}")?;
        }
        for failure in self.failures.iter().take(10) {
            writeln!(f, "\nFAIL {failure}")?;
        }
        Ok(())
    }
}
