//! `BackwardOptions`: how a backward pass runs (a builder).

use super::observe::{BackwardStats, SharedStats};
use crate::exec::{Accumulation, ExecOptions, Scheduler};
use crate::sync::Arc;
use std::path::PathBuf;

/// How to run a backward pass (a builder).
///
/// ```
/// use backflow::{Accumulation, BackwardOptions, Scheduler, Tensor};
/// let x = Tensor::<f32>::scalar(2.0).requires_grad();
/// let y = x.sin();
/// let opts = BackwardOptions::new()
///     .scheduler(Scheduler::Kahn)
///     .accumulation(Accumulation::Deterministic)
///     .retain_graph(true);
/// y.backward_with(&opts).unwrap();
/// y.backward_with(&opts).unwrap(); // the graph was retained
/// assert_eq!(x.grad().unwrap().item(), 2.0 * 2f32.cos());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackwardOptions {
    pub(crate) exec: ExecOptions,
    pub(crate) retain_graph: bool,
    pub(crate) create_graph: bool,
    pub(crate) detect_anomaly: bool,
    pub(crate) stats: Option<SharedStats>,
    pub(crate) trace: Option<PathBuf>,
}

impl BackwardOptions {
    /// The defaults: `Parallel` on every core, `Deterministic`, graph freed after use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the scheduler.
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.exec.scheduler = scheduler;
        self
    }

    /// Threads for `Parallel`, the caller included. 0 means every core
    /// ([`default_threads`](crate::exec::default_threads)); any count is clamped to
    /// [`max_threads`](crate::exec::max_threads) (`max(cores, 8)`, at most 256), so
    /// `threads(usize::MAX)` is fine. The helper threads are shared by every pass of the
    /// process and started on first need; if the OS refuses one, passes run with fewer.
    ///
    /// ```
    /// use backflow::{clamp_threads, max_threads, BackwardOptions};
    /// assert_eq!(BackwardOptions::new().threads(usize::MAX).get_threads(), max_threads());
    /// assert_eq!(BackwardOptions::new().threads(0).get_threads(), clamp_threads(0));
    /// ```
    pub fn threads(mut self, threads: usize) -> Self {
        self.exec.threads = crate::exec::clamp_threads(threads);
        self
    }

    /// How contributions to shared tensors are summed.
    pub fn accumulation(mut self, accumulation: Accumulation) -> Self {
        self.exec.accumulation = accumulation;
        self
    }

    /// Keeps saved tensors after the pass, so the graph can be differentiated again.
    pub fn retain_graph(mut self, retain: bool) -> Self {
        self.retain_graph = retain;
        self
    }

    /// Records the backward pass itself, so gradients can be differentiated again.
    /// Implies `retain_graph`.
    pub fn create_graph(mut self, create: bool) -> Self {
        self.create_graph = create;
        self
    }

    /// After each node, checks its gradients for NaN and infinity; the error names the op
    /// and where it was created.
    pub fn detect_anomaly(mut self, detect: bool) -> Self {
        self.detect_anomaly = detect;
        self
    }

    /// Counts the nodes each pass runs into `stats` (to see what `grad` prunes, or how far
    /// a pass has got from inside a hook).
    pub fn stats(mut self, stats: Arc<BackwardStats>) -> Self {
        self.stats = Some(SharedStats(stats));
        self
    }

    /// Writes a Chrome/Perfetto trace of each pass to `path` (trace-event JSON: one span per
    /// node run, on the thread that ran it, named by its op). Open it at ui.perfetto.dev.
    /// A later pass with the same options replaces the file, atomically (see
    /// [`backflow::io::AtomicFile`](crate::io::AtomicFile)): a write that fails leaves the
    /// earlier file as it was. The file is opened before the pass runs: a path that cannot
    /// be written fails the call with an error of op `trace` before any gradient is
    /// computed.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// The scheduler chosen.
    pub fn get_scheduler(&self) -> Scheduler {
        self.exec.scheduler
    }

    /// The thread count chosen.
    pub fn get_threads(&self) -> usize {
        self.exec.threads
    }
}
