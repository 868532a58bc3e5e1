//! Whether ops record graph nodes on this thread (`no_grad` turns it off).

use std::cell::Cell;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record graph nodes.
pub fn is_grad_enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Runs `f` with graph recording set to `enabled` on this thread, restoring it afterwards
/// (also when `f` panics).
pub fn with_grad_mode<R>(enabled: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ENABLED.with(|e| e.set(self.0));
        }
    }
    let _restore = Restore(ENABLED.with(|e| e.replace(enabled)));
    f()
}

/// Runs `f` without recording graph nodes: results of ops inside do not require grad.
///
/// ```
/// use backflow::{no_grad, Tensor};
/// let w = Tensor::<f32>::ones(&[2]).requires_grad();
/// let y = no_grad(|| &w * 2.0);
/// assert!(!y.needs_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    with_grad_mode(false, f)
}

/// Runs `f` with graph recording on, even inside [`no_grad`] (its pair).
///
/// ```
/// use backflow::{enable_grad, no_grad, Tensor};
/// let w = Tensor::<f32>::ones(&[2]).requires_grad();
/// let y = no_grad(|| enable_grad(|| &w * 2.0));
/// assert!(y.needs_grad());
/// ```
pub fn enable_grad<R>(f: impl FnOnce() -> R) -> R {
    with_grad_mode(true, f)
}
