//! `backflow stress`: random DAGs under every scheduler, thread count and accumulation mode,
//! with fault injection and a watchdog. Exits non-zero on any mismatch or hang, printing
//! the command that reproduces the first failing seed.

use super::args;
use super::CliResult;
use backflow_stress::{GraphSpec, StressConfig};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A deliberate bug to inject, to show the harness catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mutation {
    /// Executor-level gradients drop the later of two contributions.
    DropLater,
    /// Every graph's check panics (the harness gets a NaN fault rate), to see a panicking
    /// check reported as a failure with its seed.
    Panic,
}

/// Flags of `backflow stress`.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct StressArgs {
    /// Number of random graphs (graph i uses seed + i; at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    graphs: u64,
    /// Stop starting graphs after this long (e.g. 90, 90s, 5m; more than 0, at most a week).
    #[arg(long, value_parser = args::duration)]
    duration: Option<Duration>,
    /// Thread counts for the parallel scheduler, comma-separated; 0 means all cores.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16", value_parser = args::threads)]
    threads: Vec<usize>,
    /// Seed of the first graph.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Ops per graph, at most (each graph draws from [nodes/2, nodes]; 1 to 1000000).
    #[arg(long, default_value_t = 80, value_parser = args::count(1, 1_000_000))]
    nodes: usize,
    /// Ops per layer (depth = nodes / width; 1 to 1000000).
    #[arg(long, default_value_t = 6, value_parser = args::count(1, 1_000_000))]
    width: usize,
    /// Leaves per graph (1 to 10000).
    #[arg(long, default_value_t = 6, value_parser = args::count(1, 10_000))]
    leaves: usize,
    /// Hub tensors per graph (0 to 10000).
    #[arg(long, default_value_t = 1, value_parser = args::count(0, 10_000))]
    hubs: usize,
    /// Probability that an op input is a hub, in [0, 1].
    #[arg(long, default_value_t = 0.15, value_parser = args::probability)]
    hub_share: f64,
    /// Probability that a graph also gets 1-3 injected faults, in [0, 1].
    #[arg(long, default_value_t = 0.02, value_parser = args::probability)]
    fault_rate: f64,
    /// Graphs checked at once; 0 means all cores.
    #[arg(long, default_value = "0", value_parser = args::threads)]
    jobs: usize,
    /// Watchdog deadline of one backward run (e.g. 30, 30s, 2m; more than 0, at most a week).
    #[arg(long, default_value = "30", value_parser = args::duration)]
    deadline: Duration,
    /// Check every n-th seed in f64 against finite differences (0: never).
    #[arg(long, default_value_t = 16)]
    f64_every: u64,
    /// Run a concurrent-callers check on every n-th seed (0: never).
    #[arg(long, default_value_t = 64)]
    callers_every: u64,
    /// Run a re-entrant check on every n-th seed: hooks, on_grad_ready callbacks and a
    /// custom op that run nested backward passes (0: never).
    #[arg(long, default_value_t = 8)]
    reentrant_every: u64,
    /// Deepest nesting of the re-entrant check; each such seed draws from 1..=depth (1 to 8).
    #[arg(long, default_value_t = 3, value_parser = args::count(1, 8))]
    reentrant_depth: usize,
    /// Run an unequal-callers check on every n-th seed: an independent caller must finish
    /// its passes while another caller's slow branch blocks (0: never).
    #[arg(long, default_value_t = 16)]
    unequal_every: u64,
    /// Inject a deliberate bug, to see it caught.
    #[arg(long)]
    mutate: Option<Mutation>,
}

impl StressArgs {
    fn config(&self) -> StressConfig {
        StressConfig {
            seed: self.seed,
            graphs: if self.duration.is_some() && self.graphs == 1000 {
                u64::MAX
            } else {
                self.graphs
            },
            duration: self.duration,
            // The rows are labelled by the count that ran.
            threads: args::threads_as_run("--threads", &self.threads),
            jobs: self.jobs,
            spec: GraphSpec {
                nodes: self.nodes,
                width: self.width,
                leaves: self.leaves,
                hubs: self.hubs,
                hub_share: self.hub_share,
                ..GraphSpec::default()
            },
            fault_rate: if self.mutate == Some(Mutation::Panic) {
                f64::NAN
            } else {
                self.fault_rate
            },
            deadline: self.deadline,
            f64_every: self.f64_every,
            callers_every: self.callers_every,
            reentrant_every: self.reentrant_every,
            reentrant_depth: self.reentrant_depth,
            unequal_every: self.unequal_every,
            drop_later: self.mutate == Some(Mutation::DropLater),
            ..StressConfig::default()
        }
    }

    /// The command that checks graph `seed` alone with the same settings.
    fn reproduce(&self, seed: u64) -> String {
        let threads: Vec<String> = self.threads.iter().map(usize::to_string).collect();
        let mut cmd = format!(
            "cargo run --release -- stress --seed {seed} --graphs 1 --nodes {} --width {} --leaves {} --hubs {} \
             --hub-share {} --fault-rate {} --threads {} --f64-every {} --callers-every {} \
             --reentrant-every {} --reentrant-depth {} --unequal-every {}",
            self.nodes,
            self.width,
            self.leaves,
            self.hubs,
            self.hub_share,
            self.fault_rate,
            threads.join(","),
            self.f64_every,
            self.callers_every,
            self.reentrant_every,
            self.reentrant_depth,
            self.unequal_every
        );
        match self.mutate {
            Some(Mutation::DropLater) => cmd += " --mutate drop-later",
            Some(Mutation::Panic) => cmd += " --mutate panic",
            None => {}
        }
        cmd
    }
}

/// Runs the stress test with a progress bar and prints the summary table.
pub fn run(args: StressArgs) -> CliResult {
    let cfg = args.config();
    let len = if cfg.graphs == u64::MAX {
        0
    } else {
        cfg.graphs
    };
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(
            "stress [{bar:30}] {pos}/{len} graphs  ({elapsed}, eta {eta}, {per_sec})",
        )?
        .progress_chars("=> "),
    );
    let summary = backflow_stress::run(&cfg, &|done| bar.set_position(done));
    bar.finish_and_clear();
    println!(
        "backflow stress: seed {}, {} configurations, {} jobs, threads {:?}",
        cfg.seed,
        summary.configs.len(),
        cfg.jobs,
        cfg.threads
    );
    println!("{summary}");
    if summary.passed() {
        return Ok(());
    }
    let seed = summary.failing_seed().or_else(|| {
        summary
            .hangs
            .first()
            .and_then(|h| h.label.split_whitespace().nth(1)?.parse().ok())
    });
    if let Some(seed) = seed {
        println!("reproduce with:\n  {}", args.reproduce(seed));
    }
    let panics = summary
        .failures
        .iter()
        .filter(|f| f.phase == "panic")
        .count();
    Err(format!(
        "{} failures ({} mismatches, {panics} panicking checks), {} hangs",
        summary.failures.len(),
        summary.failures.len() - panics,
        summary.hangs.len()
    )
    .into())
}
