//! The watchdog: every backward run is watched against a deadline, and one that exceeds it
//! is reported as a hang, with its label (seed and configuration) and a dump of the state
//! the run exposes. A hung run is never killed silently: Rust cannot kill a thread, so the
//! watchdog reports it and the caller decides (the `stress` command prints the report and
//! exits non-zero).
//!
//! Two forms: [`Watchdog`] monitors many long-lived worker threads through per-worker slots
//! (one monitor thread, no thread per run), and [`run_with_deadline`] runs one closure on a
//! thread of its own and waits for it with a timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Describes the state of a run in progress, for a hang report.
pub type Dump = Arc<dyn Fn() -> String + Send + Sync>;

/// A run that exceeded its deadline.
#[derive(Clone, Debug)]
pub struct Hang {
    /// What was running: the seed and configuration.
    pub label: String,
    /// How long it had run when reported.
    pub elapsed: Duration,
    /// The run's state at that moment (empty when it exposes none).
    pub dump: String,
}

impl std::fmt::Display for Hang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HANG after {:.1?}: {}", self.elapsed, self.label)?;
        write!(f, "{}", self.dump)
    }
}

struct Running {
    since: Instant,
    label: String,
    dump: Option<Dump>,
    reported: bool,
}

struct Inner {
    deadline: Duration,
    slots: Vec<Mutex<Option<Running>>>,
    hangs: Mutex<Vec<Hang>>,
    stop: AtomicBool,
}

/// Monitors the runs of a fixed number of worker slots from one background thread.
pub struct Watchdog {
    inner: Arc<Inner>,
}

impl Watchdog {
    /// Starts monitoring `slots` workers, each run allowed `deadline`.
    pub fn start(slots: usize, deadline: Duration) -> Watchdog {
        let inner = Arc::new(Inner {
            deadline,
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            hangs: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let monitor = Arc::clone(&inner);
        let poll = (deadline / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
        thread::Builder::new()
            .name("stress-watchdog".into())
            .spawn(move || {
                while !monitor.stop.load(Ordering::Acquire) {
                    thread::sleep(poll);
                    monitor.scan();
                }
            })
            .expect("stress: cannot start the watchdog thread");
        Watchdog { inner }
    }

    /// The handle worker `i` runs its work through.
    pub fn slot(&self, i: usize) -> Watch {
        assert!(i < self.inner.slots.len(), "watchdog slot {i} out of range");
        Watch {
            inner: Some((Arc::clone(&self.inner), i)),
        }
    }

    /// The hangs reported so far.
    pub fn hangs(&self) -> Vec<Hang> {
        self.inner
            .hangs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
    }
}

impl Inner {
    fn scan(&self) {
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            let Some(run) = slot.as_mut() else { continue };
            let elapsed = run.since.elapsed();
            if run.reported || elapsed <= self.deadline {
                continue;
            }
            run.reported = true;
            let dump = run.dump.as_ref().map(|d| d()).unwrap_or_default();
            let hang = Hang {
                label: run.label.clone(),
                elapsed,
                dump,
            };
            self.hangs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(hang);
        }
    }
}

/// One worker's view of a [`Watchdog`], or an unwatched stand-in.
#[derive(Clone)]
pub struct Watch {
    inner: Option<(Arc<Inner>, usize)>,
}

impl Watch {
    /// A handle that watches nothing (for callers without a watchdog).
    pub fn none() -> Watch {
        Watch { inner: None }
    }

    /// Runs `f` under the deadline, labelled `label`; `dump` describes its state if it hangs.
    pub fn run<R>(
        &self,
        label: impl FnOnce() -> String,
        dump: Option<Dump>,
        f: impl FnOnce() -> R,
    ) -> R {
        let Some((inner, i)) = &self.inner else {
            return f();
        };
        let running = Running {
            since: Instant::now(),
            label: label(),
            dump,
            reported: false,
        };
        *inner.slots[*i].lock().unwrap_or_else(|e| e.into_inner()) = Some(running);
        // Cleared on the way out even if `f` panics, so a panic is not later reported as a
        // hang of this slot.
        struct Clear<'a>(&'a Mutex<Option<Running>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        let _clear = Clear(&inner.slots[*i]);
        f()
    }

    /// Whether this worker's watchdog has reported any hang (so workers can stop early).
    pub fn any_hang(&self) -> bool {
        self.inner.as_ref().is_some_and(|(inner, _)| {
            !inner
                .hangs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        })
    }
}

/// Runs `f` on a thread of its own and waits at most `deadline` for it. On time it returns
/// `f`'s result; otherwise a [`Hang`] with `label` and `dump()`, leaving the thread running
/// (it is reported, not killed).
pub fn run_with_deadline<R: Send + 'static>(
    label: &str,
    deadline: Duration,
    dump: Option<Dump>,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Hang> {
    let (tx, rx) = mpsc::channel();
    let since = Instant::now();
    thread::Builder::new()
        .name("stress-run".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("stress: cannot start a run thread");
    match rx.recv_timeout(deadline) {
        Ok(result) => Ok(result),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Hang {
            label: label.to_string(),
            elapsed: since.elapsed(),
            dump: dump.map(|d| d()).unwrap_or_default(),
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("stress run `{label}` panicked outside its catch")
        }
    }
}
