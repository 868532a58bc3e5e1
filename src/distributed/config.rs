//! `DistributedConfig`: how [`DataParallel`](super::DataParallel) groups and reduces gradients.

use std::time::Duration;

/// Settings of a [`DataParallel`](super::DataParallel) wrapper (a builder).
///
/// ```
/// use backflow::distributed::DistributedConfig;
/// use std::time::Duration;
/// let config = DistributedConfig::new()
///     .bucket_bytes(256 * 1024)
///     .timeout(Duration::from_secs(30));
/// assert_eq!(config.bucket_bytes_value(), 256 * 1024);
/// assert!(config.overlap_value());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DistributedConfig {
    bucket_bytes: usize,
    overlap: bool,
    observed_order: bool,
    timeout: Duration,
    poll_interval: Duration,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            bucket_bytes: 128 * 1024,
            overlap: true,
            observed_order: true,
            timeout: Duration::from_secs(60),
            poll_interval: Duration::from_micros(100),
        }
    }
}

impl DistributedConfig {
    /// The defaults: 128 KiB buckets, rebuilt in the observed order after the first step,
    /// allreduce overlapped with backward, a 60 s deadline,
    /// MPI polled every 100 µs while a reduction is in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bucket closes once it holds at least this many bytes of gradients (f32), so each
    /// bucket holds one parameter or more; `usize::MAX` puts the whole model in one bucket.
    pub fn bucket_bytes(mut self, bytes: usize) -> Self {
        self.bucket_bytes = bytes.max(1);
        self
    }

    /// Whether a bucket's allreduce starts during backward, as soon as its last gradient is
    /// final (`true`, the default), or only in
    /// [`synchronize`](super::DataParallel::synchronize), after backward (`false`: the
    /// baseline that hides nothing).
    pub fn overlap(mut self, overlap: bool) -> Self {
        self.overlap = overlap;
        self
    }

    /// Whether, after the first step, the buckets are rebuilt in the order in which rank 0
    /// saw the gradients become final (`true`, the default), or stay in reverse
    /// registration order (`false`). Our executor's order need not follow registration:
    /// a wide model's branches finish in the order the scheduler ran them.
    pub fn observed_order(mut self, observed: bool) -> Self {
        self.observed_order = observed;
        self
    }

    /// The longest a collective may take once this rank waits for it. Past it the rank
    /// prints which step and bucket stalled and aborts the whole MPI job: a rank that
    /// stopped never makes the others hang.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the communication thread calls into MPI (`MPI_Test`) while reductions are
    /// in flight; Open MPI's non-blocking collectives advance only inside MPI calls.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The bucket size, in bytes.
    pub fn bucket_bytes_value(&self) -> usize {
        self.bucket_bytes
    }

    /// Whether reductions overlap backward.
    pub fn overlap_value(&self) -> bool {
        self.overlap
    }

    /// Whether buckets follow the observed order after the first step.
    pub fn observed_order_value(&self) -> bool {
        self.observed_order
    }

    /// The deadline for one collective.
    pub fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// The polling interval.
    pub fn poll_interval_value(&self) -> Duration {
        self.poll_interval
    }
}
