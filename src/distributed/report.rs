//! `StepReport`: what one step's synchronisation measured, and the share of its allreduce
//! time that backward hid.

use super::CommSpan;
use std::time::{Duration, Instant};

/// What one [`DataParallel::synchronize`](super::DataParallel::synchronize) measured.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// The loss of the whole batch: every rank's loss weighted by its share of the rows.
    pub loss: f32,
    /// Each bucket's allreduce, in bucket order.
    pub spans: Vec<CommSpan>,
    /// When `synchronize` was called (backward had ended).
    pub called: Instant,
    /// How long `synchronize` waited for reductions still in flight.
    pub waited: Duration,
}

impl StepReport {
    /// The share of the allreduce time (the union of the buckets' spans) that ran before
    /// `backward_end`, hidden behind backward: 1.0 when every reduction finished during
    /// backward, 0.0 when none started before it ended.
    pub fn hidden_share(&self, backward_end: Instant) -> f64 {
        let mut spans: Vec<(Instant, Instant)> =
            self.spans.iter().map(|s| (s.started, s.finished)).collect();
        spans.sort_by_key(|s| s.0);
        let (mut total, mut hidden) = (Duration::ZERO, Duration::ZERO);
        let mut current: Option<(Instant, Instant)> = None;
        let mut close = |(a, b): (Instant, Instant)| {
            total += b - a;
            hidden += backward_end.clamp(a, b) - a;
        };
        for (a, b) in spans {
            current = match current {
                Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
                Some(done) => {
                    close(done);
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some(done) = current {
            close(done);
        }
        if total.is_zero() {
            return 0.0;
        }
        hidden.as_secs_f64() / total.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_share_is_the_union_of_spans_before_backward_ended() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        let span = |bucket, a, b| CommSpan {
            bucket,
            bytes: 4,
            ready: at(a),
            started: at(a),
            finished: at(b),
        };
        let report = StepReport {
            loss: 0.0,
            // Two overlapping spans (union 0–20 µs) and one after a gap (30–40 µs).
            spans: vec![span(0, 0, 10), span(1, 5, 20), span(2, 30, 40)],
            called: at(15),
            waited: Duration::ZERO,
        };
        // 30 µs of allreduce, 15 of them before backward ended at 15 µs.
        assert!((report.hidden_share(at(15)) - 0.5).abs() < 1e-9);
        assert_eq!(report.hidden_share(at(0)), 0.0);
        assert_eq!(report.hidden_share(at(50)), 1.0);
        let none = StepReport {
            spans: Vec::new(),
            ..report
        };
        assert_eq!(none.hidden_share(at(50)), 0.0);
    }
}
