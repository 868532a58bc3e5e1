//! The `backflow` binary's allocator setting: keep freed memory instead of returning it to
//! the operating system.
//!
//! Every backward pass allocates its gradients afresh. glibc gives the freed top of each
//! thread's heap back to the kernel (trimming), so the next pass page-faults the same memory
//! in again, and at high thread counts those faults serialise in the kernel. On the 16-core
//! machine, W2 at 16 threads took 2.9–3.0 ms with glibc's defaults and 1.9–2.0 ms with
//! trimming off, with 85 % fewer minor faults (benches/results/run3-malloc-16core.txt).
//! A program using the library can do the same with `MALLOC_TRIM_THRESHOLD_` and
//! `MALLOC_TOP_PAD_`, or another allocator.

/// With the `mimalloc` feature, the binary allocates with mimalloc instead.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Environment variable that keeps glibc's defaults when set (to compare).
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
pub const OPT_OUT: &str = "BACKFLOW_DEFAULT_MALLOC";

/// Turns trimming off (and pads heap growth) unless [`OPT_OUT`] is set; says what it did.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
pub fn keep_freed_memory() -> &'static str {
    if std::env::var_os(OPT_OUT).is_some() {
        return "glibc defaults";
    }
    // SAFETY:
    // - mallopt only changes glibc's allocator tunables, and is called at the start of
    //   main, before this program starts any thread;
    // - both values are in the ranges glibc documents (an int byte count).
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
    "glibc, trimming off"
}

/// With mimalloc, nothing to set.
#[cfg(feature = "mimalloc")]
pub fn keep_freed_memory() -> &'static str {
    "mimalloc"
}

/// Elsewhere the system allocator is left as it is.
#[cfg(not(any(all(target_os = "linux", target_env = "gnu"), feature = "mimalloc")))]
pub fn keep_freed_memory() -> &'static str {
    "system default"
}
