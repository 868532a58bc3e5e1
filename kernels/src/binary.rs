//! Elementwise binary ops with NumPy broadcasting, each declared once in a table with its
//! forward and the two partial derivatives that make up its backward.
//!
//! The backward computes each partial over the broadcast output shape, then sums it back to
//! the input's shape with [`reduce_to`](crate::reduce_to).

use crate::par::Kind;
use crate::shape::{broadcast_shapes, broadcast_strides, numel, reduce_owned, walk};
use crate::{split, Element};

/// Flops a binary op is taken to cost per element, for sizing its chunks (large same-shape
/// operands are memory-bound; splitting spreads the memory traffic over the cores).
const FLOPS: usize = 4;

/// Below this many elements a same-shape op maps directly (no zeroed buffer, no split).
const SPLIT_LEN: usize = 2 * split::UNIT_FLOPS / FLOPS;

/// An elementwise binary op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
}

/// The broadcast output shape; panics if the shapes are incompatible.
fn out_shape(op: Binary, a_shape: &[usize], b_shape: &[usize]) -> Vec<usize> {
    broadcast_shapes(a_shape, b_shape).unwrap_or_else(|| {
        panic!(
            "{}: shapes {a_shape:?} and {b_shape:?} do not broadcast",
            op.name()
        )
    })
}

/// Calls `f(i, a_i, b_i)` for every flat index `i` of the broadcast shape `out` in row-major
/// order, where `a_i` and `b_i` are the elements broadcasting reads there, and collects the
/// results.
fn broadcast_map<T: Element>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &[usize],
    f: impl Fn(usize, T, T) -> T + Sync,
) -> Vec<T> {
    assert!(
        a.len() == numel(a_shape) && b.len() == numel(b_shape),
        "binary: data does not match shapes {a_shape:?} and {b_shape:?}"
    );
    if a_shape == b_shape && a.len() >= SPLIT_LEN {
        let mut y = vec![T::zero(); a.len()];
        split::for_each_block(Kind::Elementwise, &mut y, FLOPS, &|start, part| {
            let pairs = a[start..].iter().zip(&b[start..]);
            for (k, (o, (&x, &v))) in part.iter_mut().zip(pairs).enumerate() {
                *o = f(start + k, x, v);
            }
        });
        return y;
    }
    if a_shape == b_shape {
        return a
            .iter()
            .zip(b)
            .enumerate()
            .map(|(i, (&x, &y))| f(i, x, y))
            .collect();
    }
    // A single element broadcasts without reordering the other side: `out` is its shape,
    // perhaps with leading 1s.
    if a.len() == 1 {
        return b.iter().enumerate().map(|(i, &y)| f(i, a[0], y)).collect();
    }
    if b.len() == 1 {
        return a.iter().enumerate().map(|(i, &x)| f(i, x, b[0])).collect();
    }
    let (sa, sb) = (
        broadcast_strides(a_shape, out),
        broadcast_strides(b_shape, out),
    );
    let mut y = Vec::with_capacity(numel(out));
    walk(out, [&sa, &sb], |i, [oa, ob]| y.push(f(i, a[oa], b[ob])));
    y
}

/// Declares every op once: `Op => "name", |a, b| forward, |a, b, g| da, |a, b, g| db;`,
/// where `da` and `db` are the upstream gradient `g` times each partial derivative.
/// It expands to [`Binary::name`], [`binary_forward`] and [`binary_backward`].
macro_rules! binary_ops {
    ($($op:ident => $name:literal,
        |$a:ident, $b:ident| $forward:expr,
        |$da_a:ident, $da_b:ident, $da_g:ident| $da:expr,
        |$db_a:ident, $db_b:ident, $db_g:ident| $db:expr;)*) => {
        impl Binary {
            /// Lower-case name used in error messages and exports (`"add"`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $(Binary::$op => $name,)*
                }
            }
        }

        /// Applies `op` elementwise with NumPy broadcasting; returns the result and its
        /// shape.
        ///
        /// Precondition: the shapes broadcast and each slice matches its shape.
        pub fn binary_forward<T: Element>(
            op: Binary,
            a: &[T],
            a_shape: &[usize],
            b: &[T],
            b_shape: &[usize],
        ) -> (Vec<T>, Vec<usize>) {
            let out = out_shape(op, a_shape, b_shape);
            let y = match op {
                $(Binary::$op => broadcast_map(a, a_shape, b, b_shape, &out, |_, $a, $b| $forward),)*
            };
            (y, out)
        }

        /// Gradients of `y = op(a, b)` with respect to `a` and `b` (each only if asked for),
        /// given the upstream gradient `gy` of the broadcast output, each reduced back to its
        /// input's shape.
        ///
        /// Precondition: as [`binary_forward`], and `gy` has the broadcast output's length.
        #[allow(clippy::too_many_arguments)]
        pub fn binary_backward<T: Element>(
            op: Binary,
            a: &[T],
            a_shape: &[usize],
            b: &[T],
            b_shape: &[usize],
            gy: &[T],
            need_a: bool,
            need_b: bool,
        ) -> (Option<Vec<T>>, Option<Vec<T>>) {
            let out = out_shape(op, a_shape, b_shape);
            assert_eq!(gy.len(), numel(&out), "{}_backward: gy does not match {out:?}", op.name());
            match op {
                $(Binary::$op => (
                    need_a.then(|| {
                        let full = broadcast_map(a, a_shape, b, b_shape, &out,
                            |i, $da_a, $da_b| { let $da_g = gy[i]; $da });
                        reduce_owned(full, &out, a_shape)
                    }),
                    need_b.then(|| {
                        let full = broadcast_map(a, a_shape, b, b_shape, &out,
                            |i, $db_a, $db_b| { let $db_g = gy[i]; $db });
                        reduce_owned(full, &out, b_shape)
                    }),
                ),)*
            }
        }
    };
}

binary_ops! {
    // ∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1
    Add => "add", |a, b| a + b, |_a, _b, g| g, |_a, _b, g| g;
    // ∂(a-b)/∂a = 1, ∂(a-b)/∂b = -1
    Sub => "sub", |a, b| a - b, |_a, _b, g| g, |_a, _b, g| -g;
    // ∂(ab)/∂a = b, ∂(ab)/∂b = a
    Mul => "mul", |a, b| a * b, |_a, b, g| g * b, |a, _b, g| g * a;
    // ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -a/b²
    Div => "div", |a, b| a / b, |_a, b, g| g / b, |a, b, g| -g * a / (b * b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    const ALL: [Binary; 4] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div];

    #[test]
    fn split_same_shape_ops_keep_their_bits() {
        let shape = [8 * 4096 + 123];
        let (a, b, gy) = (
            values(shape[0], 31),
            values(shape[0], 32),
            values(shape[0], 33),
        );
        for op in ALL {
            let run = |chunks| {
                split::with_chunks(chunks, || {
                    let (y, _) = binary_forward(op, &a, &shape, &b, &shape);
                    let (ga, gb) = binary_backward(op, &a, &shape, &b, &shape, &gy, true, true);
                    [y, ga.unwrap(), gb.unwrap()].map(|v| split::bits(&v))
                })
            };
            let whole = run(1);
            for chunks in split::TEST_CHUNKS {
                assert!(run(chunks) == whole, "{} at {chunks} chunks", op.name());
            }
        }
    }

    /// Shape pairs covering the fast paths and the general strided walk.
    const CASES: [(&[usize], &[usize]); 6] = [
        (&[3, 4], &[3, 4]),
        (&[3, 1], &[1, 4]),
        (&[], &[3, 4]),
        (&[3, 4], &[]),
        (&[1, 4], &[3, 4]),
        (&[2, 1, 3], &[4, 1]),
    ];

    #[test]
    fn every_backward_matches_finite_differences() {
        for op in ALL {
            for (sa, sb) in CASES {
                let a = values(numel(sa), 1);
                // Keep divisors away from zero.
                let b: Vec<f64> = values(numel(sb), 2).iter().map(|v| v + 2.0).collect();
                let (_, out) = binary_forward(op, &a, sa, &b, sb);
                let gy = values(numel(&out), 3);
                let (ga, gb) = binary_backward(op, &a, sa, &b, sb, &gy, true, true);
                let (ga, gb) = (ga.unwrap(), gb.unwrap());
                assert_eq!((ga.len(), gb.len()), (a.len(), b.len()));
                check_vjp(|a| binary_forward(op, a, sa, &b, sb).0, &a, &gy, &ga);
                check_vjp(|b| binary_forward(op, &a, sa, b, sb).0, &b, &gy, &gb);
            }
        }
    }

    #[test]
    fn column_plus_row() {
        let (y, shape) = binary_forward(
            Binary::Add,
            &[0.0, 10.0, 20.0],
            &[3, 1],
            &[1.0, 2.0, 3.0, 4.0],
            &[1, 4],
        );
        assert_eq!(shape, vec![3, 4]);
        assert_eq!(
            y,
            vec![1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0, 21.0, 22.0, 23.0, 24.0]
        );
    }

    #[test]
    fn scalar_with_matrix_gradient_sums() {
        // y = s * M, so dL/ds = Σ gy ⊙ M and dL/dM = s * gy.
        let m = [1.0f64, 2.0, 3.0, 4.0];
        let (gs, gm) =
            binary_backward(Binary::Mul, &[3.0], &[], &m, &[2, 2], &[1.0; 4], true, true);
        assert_close(&gs.unwrap(), &[10.0], 1e-15);
        assert_close(&gm.unwrap(), &[3.0; 4], 1e-15);
    }

    #[test]
    fn only_requested_gradients_are_computed() {
        let x = [1.0f32, 2.0];
        let (ga, gb) = binary_backward(Binary::Sub, &x, &[2], &x, &[2], &[1.0, 1.0], false, true);
        assert!(ga.is_none());
        assert_eq!(gb.unwrap(), vec![-1.0, -1.0]);
    }
}
