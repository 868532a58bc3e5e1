//! Elementwise comparisons producing 0/1 masks, and selection by a mask, with NumPy
//! broadcasting. Masks carry no gradient; the selection's backward routes `gy` by the mask.

use crate::shape::{broadcast_shapes, broadcast_strides, numel, walk};
use crate::Element;

/// An elementwise comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `a > b`
    Gt,
    /// `a < b`
    Lt,
    /// `a >= b`
    Ge,
    /// `a <= b`
    Le,
    /// `a == b`
    Eq,
}

impl Compare {
    /// The op's name in errors and graphs.
    pub fn name(self) -> &'static str {
        match self {
            Compare::Gt => "gt",
            Compare::Lt => "lt",
            Compare::Ge => "ge",
            Compare::Le => "le",
            Compare::Eq => "eq_mask",
        }
    }

    fn holds<T: Element>(self, a: T, b: T) -> bool {
        match self {
            Compare::Gt => a > b,
            Compare::Lt => a < b,
            Compare::Ge => a >= b,
            Compare::Le => a <= b,
            Compare::Eq => a == b,
        }
    }
}

/// 1 where `op` holds between `a` (shape `sa`) and `b` (shape `sb`) broadcast together, 0
/// elsewhere (a NaN compares false); returns the mask and its shape.
///
/// Precondition: the shapes broadcast and each slice matches its shape.
pub fn compare<T: Element>(
    op: Compare,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
) -> (Vec<T>, Vec<usize>) {
    let out = broadcast_shapes(sa, sb).expect("compare: shapes do not broadcast");
    let (ra, rb) = (broadcast_strides(sa, &out), broadcast_strides(sb, &out));
    let mut y = Vec::with_capacity(numel(&out));
    walk(&out, [&ra, &rb], |_, [i, j]| {
        y.push(if op.holds(a[i], b[j]) {
            T::one()
        } else {
            T::zero()
        });
    });
    (y, out)
}

/// `a` where `cond != 0` (NaN included), `b` elsewhere, the three broadcast to `out`.
///
/// Precondition: every shape broadcasts to `out` and each slice matches its shape.
pub fn select_where<T: Element>(
    (cond, sc): (&[T], &[usize]),
    (a, sa): (&[T], &[usize]),
    (b, sb): (&[T], &[usize]),
    out: &[usize],
) -> Vec<T> {
    let (rc, ra, rb) = (
        broadcast_strides(sc, out),
        broadcast_strides(sa, out),
        broadcast_strides(sb, out),
    );
    let mut y = Vec::with_capacity(numel(out));
    walk(out, [&rc, &ra, &rb], |_, [c, i, j]| {
        y.push(if cond[c] != T::zero() { a[i] } else { b[j] });
    });
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_broadcast_and_treat_nan_as_false() {
        let a = [1.0f32, 2.0, 3.0];
        let (y, shape) = compare(Compare::Gt, &a, &[3], &[2.0], &[]);
        assert_eq!((y, shape), (vec![0.0, 0.0, 1.0], vec![3]));
        let (y, shape) = compare(Compare::Le, &a, &[3, 1], &[2.0, f32::NAN], &[2]);
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(y, vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            compare(Compare::Eq, &a, &[3], &[2.0], &[1]).0,
            vec![0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn select_where_broadcasts_all_three() {
        let y = select_where(
            (&[1.0f64, 0.0], &[2, 1]),
            (&[10.0, 20.0], &[2]),
            (&[-1.0], &[]),
            &[2, 2],
        );
        assert_eq!(y, vec![10.0, 20.0, -1.0, -1.0]);
    }
}
