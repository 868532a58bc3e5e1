//! Model-checked primitives: loom's atomics, `Arc`, locks and threads.

pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
pub use loom::sync::Arc;

/// Stands in for crossbeam's `CachePadded` (padding does not matter to the model).
#[derive(Default, Debug)]
pub struct CachePadded<T>(T);

impl<T> CachePadded<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
}

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// loom's mutex behind parking_lot's `lock()` signature, as tokio's `loom/mocked.rs` does.
#[derive(Debug, Default)]
pub struct Mutex<T>(loom::sync::Mutex<T>);

/// A guard of [`Mutex`].
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// Creates a mutex.
    pub fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value))
    }

    /// Locks the mutex (loom's poisoning is unwrapped away).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }

    /// Consumes the mutex, returning its value.
    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap()
    }
}

/// loom's condition variable; timeouts are modelled as spurious wake-ups.
#[derive(Debug, Default)]
pub struct Condvar(loom::sync::Condvar);

impl Condvar {
    /// Creates a condition variable.
    pub fn new() -> Self {
        Self(loom::sync::Condvar::new())
    }

    /// Blocks until notified; loom explores the interleavings a timeout would allow.
    pub fn wait_for<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        _timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap()
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// Tells loom's scheduler that this thread spins.
pub fn yield_now() {
    loom::thread::yield_now();
}

/// Every model thread shares lane 0: trace lanes are not part of any model.
pub fn thread_index() -> u32 {
    0
}

/// A handle to a model thread started by [`spawn`].
pub type JoinHandle = loom::thread::JoinHandle<()>;

/// Starts a model thread running `f` (loom threads cannot fail to start).
pub fn spawn(_name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle> {
    Ok(loom::thread::spawn(f))
}
