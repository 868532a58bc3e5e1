//! Max and average pooling over the planes of an NCHW tensor, each beside its backward.
//!
//! Windows of `k×k` step by `stride` over the input padded by `padding` on each side.
//! Max pooling ignores the padding; average pooling counts it as zeros (PyTorch's default
//! `count_include_pad=True`), so every window divides by `k²`.

use crate::{split, Element};

/// The sizes of a pooling: input `[n, c, h, w]` (as `planes = n·c` planes of `h×w`),
/// window `k×k`, output planes of `ho×wo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dShape {
    /// Number of planes, `n·c`.
    pub planes: usize,
    /// Plane height.
    pub h: usize,
    /// Plane width.
    pub w: usize,
    /// Window side.
    pub k: usize,
    /// Step between windows (at least 1).
    pub stride: usize,
    /// Padding on each side.
    pub padding: usize,
}

impl Pool2dShape {
    /// Output height: `(h + 2p - k) / stride + 1`.
    ///
    /// Precondition: the padded plane is at least the window.
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.padding - self.k) / self.stride + 1
    }

    /// Output width: `(w + 2p - k) / stride + 1`.
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.padding - self.k) / self.stride + 1
    }

    /// The in-plane rows and columns of the window at output `(oh, ow)`, clipped to the plane.
    fn window(&self, oh: usize, ow: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let clip = |o: usize, size: usize| {
            let start = o * self.stride;
            start.saturating_sub(self.padding).min(size)
                ..(start + self.k).saturating_sub(self.padding).min(size)
        };
        (clip(oh, self.h), clip(ow, self.w))
    }
}

/// The maximum of each window, and its index inside its plane (`row·w + col`) for the
/// backward: the first maximum in row-major order, a NaN counting as the maximum.
///
/// Precondition: `x.len() == planes·h·w`, every window overlaps the plane (`padding < k`).
pub fn max_pool2d<T: Element>(x: &[T], s: &Pool2dShape) -> (Vec<T>, Vec<usize>) {
    let (ho, wo) = (s.ho(), s.wo());
    let mut values = Vec::with_capacity(s.planes * ho * wo);
    let mut index = Vec::with_capacity(s.planes * ho * wo);
    for plane in x.chunks_exact((s.h * s.w).max(1)).take(s.planes) {
        for oh in 0..ho {
            for ow in 0..wo {
                let (rows, cols) = s.window(oh, ow);
                let (mut best, mut at) = (T::neg_infinity(), usize::MAX);
                for r in rows {
                    for c in cols.clone() {
                        let v = plane[r * s.w + c];
                        if at == usize::MAX || v > best || (v.is_nan() && !best.is_nan()) {
                            (best, at) = (v, r * s.w + c);
                        }
                    }
                }
                values.push(best);
                index.push(at);
            }
        }
    }
    (values, index)
}

/// The mean of each `k×k` window, padding counted as zeros.
///
/// Precondition: `x.len() == planes·h·w`.
pub fn avg_pool2d<T: Element>(x: &[T], s: &Pool2dShape) -> Vec<T> {
    let (ho, wo) = (s.ho(), s.wo());
    let area = T::from_f64((s.k * s.k) as f64);
    let mut y = vec![T::zero(); s.planes * ho * wo];
    if ho * wo == 0 {
        return y;
    }
    // Planes are independent: large inputs split into chunks of planes.
    split::for_each_rows(&mut y, ho * wo, s.k * s.k * ho * wo, &|first, part| {
        for (p, out) in part.chunks_exact_mut(ho * wo).enumerate() {
            let plane = &x[(first + p) * s.h * s.w..(first + p + 1) * s.h * s.w];
            for oh in 0..ho {
                for ow in 0..wo {
                    let (rows, cols) = s.window(oh, ow);
                    let mut total = T::zero();
                    for r in rows {
                        total = plane[r * s.w + cols.start..r * s.w + cols.end]
                            .iter()
                            .fold(total, |a, &v| a + v);
                    }
                    out[oh * wo + ow] = total / area;
                }
            }
        }
    });
    y
}

/// Gradient of [`avg_pool2d`]: each window's upstream gradient, divided by `k²`, added to
/// every input element of the window (`∂ mean/∂x = 1/k²` inside it).
///
/// Precondition: `gy.len() == planes·ho·wo`.
pub fn avg_pool2d_backward<T: Element>(gy: &[T], s: &Pool2dShape) -> Vec<T> {
    let (ho, wo) = (s.ho(), s.wo());
    let area = T::from_f64((s.k * s.k) as f64);
    let mut gx = vec![T::zero(); s.planes * s.h * s.w];
    if s.h * s.w == 0 {
        return gx;
    }
    // Planes are independent: large gradients split into chunks of planes.
    split::for_each_rows(&mut gx, s.h * s.w, s.k * s.k * ho * wo, &|first, part| {
        for (p, plane) in part.chunks_exact_mut(s.h * s.w).enumerate() {
            let g = &gy[(first + p) * ho * wo..(first + p + 1) * ho * wo];
            for oh in 0..ho {
                for ow in 0..wo {
                    let (rows, cols) = s.window(oh, ow);
                    let share = g[oh * wo + ow] / area;
                    for r in rows {
                        for v in &mut plane[r * s.w + cols.start..r * s.w + cols.end] {
                            *v = *v + share;
                        }
                    }
                }
            }
        }
    });
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_vjp, values};

    #[test]
    fn split_avg_pool_keeps_its_bits() {
        let s = Pool2dShape {
            planes: 24,
            h: 9,
            w: 9,
            k: 3,
            stride: 2,
            padding: 1,
        };
        let x = crate::gradcheck::values(s.planes * s.h * s.w, 41);
        let gy = crate::gradcheck::values(s.planes * s.ho() * s.wo(), 42);
        let run = |chunks| {
            split::with_chunks(chunks, || {
                let (y, gx) = (avg_pool2d(&x, &s), avg_pool2d_backward(&gy, &s));
                (split::bits(&y), split::bits(&gx))
            })
        };
        let whole = run(1);
        for chunks in split::TEST_CHUNKS {
            assert!(run(chunks) == whole, "{chunks} chunks");
        }
    }
    #[test]
    fn windows_with_padding() {
        // One 3×3 plane 1..9, k = 2, stride 2, padding 1: windows {1}, {2,3}, {4,7}, {5,6,8,9}.
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let s = Pool2dShape {
            planes: 1,
            h: 3,
            w: 3,
            k: 2,
            stride: 2,
            padding: 1,
        };
        assert_eq!(
            max_pool2d(&x, &s),
            (vec![1.0, 3.0, 7.0, 9.0], vec![0, 2, 6, 8])
        );
        assert_eq!(avg_pool2d(&x, &s), vec![0.25, 1.25, 2.75, 7.0]);
        let gy = values(4, 1);
        check_vjp(
            |x| avg_pool2d(x, &s),
            &x,
            &gy,
            &avg_pool2d_backward(&gy, &s),
        );
    }

    #[test]
    fn max_takes_the_first_of_ties() {
        let s = Pool2dShape {
            planes: 1,
            h: 2,
            w: 2,
            k: 2,
            stride: 1,
            padding: 0,
        };
        assert_eq!(max_pool2d(&[1.0f32, 4.0, 4.0, 2.0], &s).1, vec![1]);
    }
}
