//! Production primitives: std atomics and `Arc`, parking_lot locks.

pub use crossbeam_utils::CachePadded;
pub use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
pub use std::sync::{Arc, Weak};

/// A mutex with parking_lot's `lock()` (no poisoning).
pub type Mutex<T> = parking_lot::Mutex<T>;

/// A guard of [`Mutex`].
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

/// A condition variable paired with [`Mutex`].
#[derive(Default)]
pub struct Condvar(parking_lot::Condvar);

impl Condvar {
    /// Creates a condition variable.
    pub fn new() -> Self {
        Self(parking_lot::Condvar::new())
    }

    /// Blocks until notified or until `timeout` passes; returns the guard.
    pub fn wait_for<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        self.0.wait_for(&mut guard, timeout);
        guard
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one();
    }
}

/// Tells a spinning thread to let others run.
pub fn yield_now() {
    std::thread::yield_now();
}

/// A small number naming the calling thread for its lifetime: 0, 1, 2… in the order
/// threads first ask (trace lanes use it).
pub fn thread_index() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    thread_local! {
        // Relaxed: only uniqueness matters, not ordering with other memory.
        static INDEX: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

/// A handle to a helper thread started by [`spawn`].
pub type JoinHandle = std::thread::JoinHandle<()>;

/// Starts a named thread running `f`; `Err` when the OS refuses one.
pub fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle> {
    std::thread::Builder::new().name(name).spawn(f)
}
