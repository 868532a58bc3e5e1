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
    const TOP_PAD: i32 = 256 << 20;
    const _: () = assert!(TOP_PAD > 0);
    // SAFETY:
    // - mallopt takes two ints by value and touches no memory of ours; it only changes
    //   glibc's allocator tunables, under glibc's own arena lock, so it is sound from any
    //   thread at any time (main calls it first only so that every allocation sees it);
    // - the bound: both values are non-negative byte counts that fit in an int
    //   (i32::MAX, and 256 MiB, checked at compile time above), as mallopt(3) requires.
    let (trim, pad) = unsafe {
        (
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX),
            libc::mallopt(libc::M_TOP_PAD, TOP_PAD),
        )
    };
    // mallopt returns 1 on success; on failure glibc keeps its defaults, which only costs speed.
    if trim != 1 || pad != 1 {
        return "glibc defaults (mallopt refused)";
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
