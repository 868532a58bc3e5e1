//! Watching a backward pass: counting the nodes it runs ([`BackwardStats`]) and recording
//! one span per node run for a Chrome/Perfetto trace ([`BackwardOptions::trace`]).
//!
//! Both are off by default; the backward task then holds `None` and pays one branch per
//! node. Spans go to per-thread lanes (a thread's lane is its
//! [`thread_index`](crate::sync::thread_index) modulo [`LANES`]), each behind its own
//! cache-padded lock, so workers do not contend; the lanes are written out as
//! [trace-event JSON](https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU)
//! once the pass is over: one complete event (`"ph":"X"`) per node, on the thread that ran
//! it, timestamps in µs.
//!
//! [`BackwardOptions::trace`]: super::BackwardOptions::trace

use super::task::PlanNodes;
use crate::error::{Error, Result};
use crate::io::AtomicFile;
use crate::sync::{thread_index, Arc, AtomicUsize, CachePadded, Mutex, Ordering};
use backflow_kernels::Element;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Counters that backward passes add to, shared with the caller through
/// [`BackwardOptions::stats`](super::BackwardOptions::stats).
///
/// ```
/// use backflow::{grad, BackwardOptions, BackwardStats, Tensor};
/// let x = Tensor::<f64>::scalar(1.0).requires_grad();
/// let y = Tensor::<f64>::scalar(2.0).requires_grad();
/// let loss = &x.sin() + &y.exp().exp();
/// let stats = BackwardStats::new();
/// let opts = BackwardOptions::new().stats(stats.clone());
/// grad(&[&loss], &[], &[&x], &opts).unwrap();
/// assert_eq!(stats.nodes_run(), 3); // add, sin, x: the exp branch is pruned
/// ```
#[derive(Debug, Default)]
pub struct BackwardStats {
    /// Nodes whose backward started, over every pass given these stats.
    nodes_run: AtomicUsize,
}

impl BackwardStats {
    /// Fresh counters, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Nodes run so far (leaves included), summed over the passes given these stats. Read
    /// during a pass (from a hook), it counts the nodes started until then.
    pub fn nodes_run(&self) -> usize {
        self.nodes_run.load(Ordering::Relaxed)
    }

    /// Sets the counters back to zero.
    pub fn reset(&self) {
        self.nodes_run.store(0, Ordering::Relaxed);
    }
}

/// [`BackwardStats`] in [`BackwardOptions`](super::BackwardOptions): equal when shared.
#[derive(Clone, Debug)]
pub(crate) struct SharedStats(pub(crate) Arc<BackwardStats>);

impl PartialEq for SharedStats {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Trace lanes; threads whose indices agree modulo this share one.
const LANES: usize = 64;

/// One node run.
struct Span {
    node: u32,
    thread: u32,
    /// Nanoseconds from the start of the pass.
    start: u64,
    duration: u64,
}

/// What a thread recorded: its spans, and the names of the threads that used the lane.
#[derive(Default)]
struct Lane {
    spans: Vec<Span>,
    threads: Vec<(u32, String)>,
}

/// The spans of one traced pass, and where to write them.
struct Recorder {
    path: PathBuf,
    /// Opened before the pass, so that an unwritable path fails the call before any
    /// gradient is computed; it replaces the file at `path` only once the whole trace is
    /// written, so a write that fails leaves an earlier trace there as it was.
    file: Mutex<Option<AtomicFile>>,
    start: Instant,
    lanes: Box<[CachePadded<Mutex<Lane>>]>,
}

/// What one backward pass watches; the task holds `None` when nothing is asked for.
pub(super) struct Observer {
    stats: Option<Arc<BackwardStats>>,
    trace: Option<Recorder>,
}

impl Observer {
    /// The observer for these options, or `None` when neither stats nor a trace is asked.
    /// Opens the trace file, if any: an `Error::Invalid` of op `trace` names the path when it
    /// cannot be created.
    pub(super) fn new(stats: Option<&SharedStats>, trace: Option<&Path>) -> Result<Option<Self>> {
        if stats.is_none() && trace.is_none() {
            return Ok(None);
        }
        let trace = match trace {
            None => None,
            Some(path) => {
                let file = AtomicFile::create(path).map_err(|e| cannot_write(path, &e))?;
                Some(Recorder {
                    path: path.to_path_buf(),
                    file: Mutex::new(Some(file)),
                    start: Instant::now(),
                    lanes: (0..LANES)
                        .map(|_| CachePadded::new(Mutex::default()))
                        .collect(),
                })
            }
        };
        Ok(Some(Self {
            stats: stats.map(|s| Arc::clone(&s.0)),
            trace,
        }))
    }

    /// Runs node `node` through `run`, counting and timing it as asked.
    pub(super) fn observe<R>(&self, node: u32, run: impl FnOnce() -> R) -> R {
        if let Some(stats) = &self.stats {
            // Relaxed: a statistic; the pass's own synchronisation orders everything else.
            stats.nodes_run.fetch_add(1, Ordering::Relaxed);
        }
        let Some(trace) = &self.trace else {
            return run();
        };
        let begin = Instant::now();
        let result = run();
        let end = Instant::now();
        let thread = thread_index();
        let nanos = |t: Instant| t.duration_since(trace.start).as_nanos() as u64;
        let mut lane = trace.lanes[thread as usize % LANES].lock();
        if !lane.threads.iter().any(|&(t, _)| t == thread) {
            let name = std::thread::current()
                .name()
                .map_or_else(|| format!("thread {thread}"), str::to_string);
            lane.threads.push((thread, name));
        }
        lane.spans.push(Span {
            node,
            thread,
            start: nanos(begin),
            duration: nanos(end) - nanos(begin),
        });
        result
    }

    /// Writes the trace, if one was asked for; `nodes` names the ops of the dense indices.
    pub(super) fn finish<T: Element>(&self, nodes: &PlanNodes<T>) -> Result<()> {
        let Some(trace) = &self.trace else {
            return Ok(());
        };
        let json = trace.to_json(nodes);
        let Some(mut file) = trace.file.lock().take() else {
            return Ok(());
        };
        std::io::Write::write_all(&mut file, json.as_bytes())
            .and_then(|()| file.commit())
            .map_err(|e| cannot_write(&trace.path, &e))
    }
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Error {
    Error::Invalid {
        op: "trace",
        message: format!("cannot write {}: {e}", path.display()),
    }
}

impl Recorder {
    /// The trace-event JSON: thread names, then one complete event per span, one per line.
    fn to_json<T: Element>(&self, nodes: &PlanNodes<T>) -> String {
        let mut events = Vec::new();
        let lanes: Vec<_> = self
            .lanes
            .iter()
            .map(|l| std::mem::take(&mut *l.lock()))
            .collect();
        for lane in &lanes {
            for (thread, name) in &lane.threads {
                events.push(format!(
                    r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{thread},"args":{{"name":"{}"}}}}"#,
                    escape(name)
                ));
            }
        }
        let mut spans: Vec<&Span> = lanes.iter().flat_map(|l| &l.spans).collect();
        spans.sort_by_key(|s| (s.start, s.thread));
        for s in spans {
            let node = nodes.get(s.node);
            let mut event = String::new();
            let _ = write!(
                event,
                r#"{{"name":"{}","cat":"backward","ph":"X","pid":1,"tid":{},"ts":{:.3},"dur":{:.3},"args":{{"node":{},"location":"{}"}}}}"#,
                escape(node.op()),
                s.thread,
                s.start as f64 / 1e3,
                s.duration as f64 / 1e3,
                s.node,
                escape(&node.location().to_string()),
            );
            events.push(event);
        }
        format!(
            "{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n{}\n]}}\n",
            events.join(",\n")
        )
    }
}

/// `s` as the inside of a JSON string.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
