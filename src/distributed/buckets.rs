//! Buckets: parameters grouped, in the order their gradients usually become final, into
//! runs of about `bucket_bytes` each; one allreduce per bucket.

use std::time::Instant;

/// Where one parameter's gradient sits in its bucket.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// The parameter's index in registration order.
    pub param: usize,
    /// Offset of its first value in the bucket's buffer.
    pub offset: usize,
    /// Number of values.
    pub len: usize,
}

/// The parameters of one bucket and its length in values.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub slots: Vec<Slot>,
    pub len: usize,
}

/// The usual order in which gradients become final before any has been seen: last
/// registered first, since backward reaches the parameters nearest the loss (registered
/// last) first.
pub(super) fn reverse_registration(params: usize) -> Vec<usize> {
    (0..params).rev().collect()
}

/// Groups parameters of `sizes` (values each, indexed in registration order) into buckets
/// in `order`, so that bucket 0 is usually ready first. A bucket closes once it holds at
/// least `bucket_bytes` bytes.
pub(super) fn plan(sizes: &[usize], order: &[usize], bucket_bytes: usize) -> Vec<Layout> {
    let cap = bucket_bytes.div_ceil(std::mem::size_of::<f32>()).max(1);
    let mut buckets = Vec::new();
    let mut current = Layout {
        slots: Vec::new(),
        len: 0,
    };
    for &param in order {
        let len = sizes[param];
        current.slots.push(Slot {
            param,
            offset: current.len,
            len,
        });
        current.len += len;
        if current.len >= cap {
            buckets.push(std::mem::replace(
                &mut current,
                Layout {
                    slots: Vec::new(),
                    len: 0,
                },
            ));
        }
    }
    if !current.slots.is_empty() {
        buckets.push(current);
    }
    buckets
}

/// A bucket's gradients of the current step, filled by grad-ready callbacks.
#[derive(Debug)]
pub(super) struct Staging {
    /// The weighted gradients, at each slot's offset; taken when the bucket is sent.
    pub values: Vec<f32>,
    /// Per slot of the layout: whether its gradient has been copied in this step.
    pub filled: Vec<bool>,
    /// Slots not yet filled; the bucket is sent when this reaches zero.
    pub missing: usize,
    /// Whether the bucket has been sent in this step.
    pub sent: bool,
}

impl Staging {
    /// An empty bucket of `layout`, at the start of a step.
    pub fn new(layout: &Layout) -> Self {
        Self {
            values: Vec::new(),
            filled: vec![false; layout.slots.len()],
            missing: layout.slots.len(),
            sent: false,
        }
    }

    /// Copies `grad × weight` into slot `k`; returns the bucket's values when this was its
    /// last missing slot. `None` as the gradient fills zeros (a parameter without one).
    pub fn fill(
        &mut self,
        layout: &Layout,
        k: usize,
        grad: Option<&[f32]>,
        weight: f32,
    ) -> Option<Vec<f32>> {
        if self.sent || self.filled[k] {
            return None;
        }
        if self.values.len() != layout.len {
            self.values = vec![0.0; layout.len];
        }
        let slot = layout.slots[k];
        let out = &mut self.values[slot.offset..slot.offset + slot.len];
        match grad {
            Some(g) => out.iter_mut().zip(g).for_each(|(o, &g)| *o = g * weight),
            None => out.fill(0.0),
        }
        self.filled[k] = true;
        self.missing -= 1;
        if self.missing == 0 {
            self.sent = true;
            Some(std::mem::take(&mut self.values))
        } else {
            None
        }
    }
}

/// The life of one bucket's allreduce in a step, as the communication thread saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CommSpan {
    /// The bucket's index (bucket 0 holds the last-registered parameters).
    pub bucket: usize,
    /// Bytes reduced.
    pub bytes: usize,
    /// When its last gradient was final (the bucket was handed to the communication thread).
    pub ready: Instant,
    /// When its `MPI_Iallreduce` started (every earlier bucket has started by then: all
    /// ranks start collectives in the same order).
    pub started: Instant,
    /// When `MPI_Test` first saw it complete.
    pub finished: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_last_registered_first_and_close_at_the_cap() {
        // 4 parameters of 10, 20, 30, 40 values; a cap of 200 bytes = 50 values.
        let sizes = [10, 20, 30, 40];
        let layouts = plan(&sizes, &reverse_registration(4), 200);
        let params: Vec<Vec<usize>> = layouts
            .iter()
            .map(|l| l.slots.iter().map(|s| s.param).collect())
            .collect();
        assert_eq!(params, vec![vec![3, 2], vec![1, 0]]);
        assert_eq!(layouts[0].len, 70);
        assert_eq!(layouts[1].slots[1].offset, 20);
        assert_eq!(plan(&sizes, &reverse_registration(4), usize::MAX).len(), 1);
        assert_eq!(plan(&sizes, &reverse_registration(4), 1).len(), 4);
        // An observed order: parameter 1 became final first.
        let observed = plan(&sizes, &[1, 3, 0, 2], 200);
        assert_eq!(observed[0].slots[0].param, 1);
        assert_eq!(observed[0].len, 60);
    }

    #[test]
    fn a_bucket_is_sent_once_when_its_last_slot_fills() {
        let layout = &plan(&[2, 3], &[1, 0], usize::MAX)[0];
        let mut staging = Staging::new(layout);
        assert!(staging
            .fill(layout, 0, Some(&[1.0, 2.0, 3.0]), 0.5)
            .is_none());
        assert!(staging.fill(layout, 0, Some(&[9.0; 3]), 0.5).is_none()); // twice: ignored
        let values = staging.fill(layout, 1, None, 0.5).expect("complete");
        assert_eq!(values, vec![0.5, 1.0, 1.5, 0.0, 0.0]);
        assert!(staging.fill(layout, 1, None, 0.5).is_none());
    }
}
