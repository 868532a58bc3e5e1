//! 2-D convolution over NCHW by im2col and one gemm per group, beside its two backwards.
//!
//! im2col lays out, for every output position `(n, oh, ow)` (a row), the `C/g · kH · kW`
//! input values its window reads in group `g` (the columns; zero where the window hangs over
//! the padding). Then `y_g = cols · W_gᵀ`, `∂L/∂W_g = gy_gᵀ · cols` and
//! `∂L/∂cols = gy_g · W_g`, which col2im adds back into the input's gradient.

use crate::Element;

/// The sizes of a convolution: input `[n, c_in, h, w]`, weight `[c_out, c_in/groups, kh,
/// kw]`, output `[n, c_out, ho, wo]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between windows, both ways (at least 1).
    pub stride: usize,
    /// Zeros added on each side, both ways.
    pub padding: usize,
    /// Channel groups; `c_in` and `c_out` are multiples of it.
    pub groups: usize,
}

impl Conv2dShape {
    /// Output height: `(h + 2p - kh) / stride + 1`.
    ///
    /// Precondition: the padded input is at least the kernel.
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }

    /// Output width: `(w + 2p - kw) / stride + 1`.
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }

    /// Elements of one filter (one im2col row): `c_in/groups · kh · kw`.
    fn k(&self) -> usize {
        self.c_in / self.groups * self.kh * self.kw
    }

    /// Output positions (im2col rows): `n · ho · wo`.
    fn rows(&self) -> usize {
        self.n * self.ho() * self.wo()
    }

    /// The im2col matrix `[rows, k]` of group `g` of `x`.
    fn im2col<T: Element>(&self, x: &[T], g: usize) -> Vec<T> {
        let (ho, wo, cg) = (self.ho(), self.wo(), self.c_in / self.groups);
        let mut cols = Vec::with_capacity(self.rows() * self.k());
        for n in 0..self.n {
            for oh in 0..ho {
                for ow in 0..wo {
                    for c in 0..cg {
                        let plane =
                            &x[(n * self.c_in + g * cg + c) * self.h * self.w..][..self.h * self.w];
                        for i in 0..self.kh {
                            let ih = (oh * self.stride + i)
                                .checked_sub(self.padding)
                                .filter(|&r| r < self.h);
                            for j in 0..self.kw {
                                let iw = (ow * self.stride + j)
                                    .checked_sub(self.padding)
                                    .filter(|&c| c < self.w);
                                cols.push(match (ih, iw) {
                                    (Some(r), Some(c)) => plane[r * self.w + c],
                                    _ => T::zero(),
                                });
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    /// Adds the im2col-shaped gradient `gcols` of group `g` back into `gx` (the adjoint of
    /// [`im2col`](Self::im2col): each input element receives every window's share of it).
    fn col2im_add<T: Element>(&self, gcols: &[T], g: usize, gx: &mut [T]) {
        let (ho, wo, cg) = (self.ho(), self.wo(), self.c_in / self.groups);
        let mut at = 0;
        for n in 0..self.n {
            for oh in 0..ho {
                for ow in 0..wo {
                    for c in 0..cg {
                        let plane = &mut gx[(n * self.c_in + g * cg + c) * self.h * self.w..]
                            [..self.h * self.w];
                        for i in 0..self.kh {
                            let ih = (oh * self.stride + i)
                                .checked_sub(self.padding)
                                .filter(|&r| r < self.h);
                            for j in 0..self.kw {
                                let iw = (ow * self.stride + j)
                                    .checked_sub(self.padding)
                                    .filter(|&c| c < self.w);
                                if let (Some(r), Some(c)) = (ih, iw) {
                                    plane[r * self.w + c] = plane[r * self.w + c] + gcols[at];
                                }
                                at += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y = conv2d(x, w) + b` over NCHW: `x` is `[n, c_in, h, w]`, `w` is `[c_out, c_in/groups,
/// kh, kw]`, `b` (if given) is `[c_out]`; `y` is `[n, c_out, ho, wo]`.
///
/// Precondition: the slices match `s`, `s.groups` divides both channel counts, the padded
/// input is at least the kernel, `s.stride >= 1`.
pub fn conv2d<T: Element>(x: &[T], w: &[T], b: Option<&[T]>, s: &Conv2dShape) -> Vec<T> {
    let (k, rows, cog, plane) = (s.k(), s.rows(), s.c_out / s.groups, s.ho() * s.wo());
    let mut y = vec![T::zero(); s.n * s.c_out * plane];
    let mut out = vec![T::zero(); rows * cog];
    for g in 0..s.groups {
        let cols = s.im2col(x, g);
        // y_g[row, co] = Σ_p cols[row, p] · W[g·cog + co, p]: W_gᵀ is k×cog, strides (1, k).
        let wg = &w[g * cog * k..(g + 1) * cog * k];
        T::gemm(rows, k, cog, &cols, (k, 1), wg, (1, k), &mut out, T::zero());
        for (row, vals) in out.chunks_exact(cog.max(1)).enumerate().take(rows) {
            let (n, p) = (row / plane, row % plane);
            for (co, &v) in vals.iter().enumerate() {
                let c = g * cog + co;
                y[(n * s.c_out + c) * plane + p] = v + b.map_or(T::zero(), |b| b[c]);
            }
        }
    }
    y
}

/// `gy` (`[n, c_out, ho, wo]`) as rows `[n·ho·wo, c_out]`, the layout of the gemm outputs.
fn gy_rows<T: Element>(gy: &[T], s: &Conv2dShape) -> Vec<T> {
    let plane = s.ho() * s.wo();
    let mut rows = vec![T::zero(); gy.len()];
    for n in 0..s.n {
        for c in 0..s.c_out {
            for p in 0..plane {
                rows[(n * plane + p) * s.c_out + c] = gy[(n * s.c_out + c) * plane + p];
            }
        }
    }
    rows
}

/// Gradient of [`conv2d`] with respect to its input, from the upstream `gy` and the weight:
/// `∂L/∂cols_g = gy_g · W_g`, added back to the input positions by col2im. Linear in `gy`
/// and in `w` (a transposed convolution).
///
/// Precondition: as [`conv2d`], and `gy` is `[n, c_out, ho, wo]`.
pub fn conv2d_input_grad<T: Element>(gy: &[T], w: &[T], s: &Conv2dShape) -> Vec<T> {
    let (k, rows, cog) = (s.k(), s.rows(), s.c_out / s.groups);
    let mut gx = vec![T::zero(); s.n * s.c_in * s.h * s.w];
    let g_rows = gy_rows(gy, s);
    let mut gcols = vec![T::zero(); rows * k];
    for g in 0..s.groups {
        // gy_g is rows×cog at column offset g·cog of the rows×c_out matrix: strides (c_out, 1).
        let gy_g = &g_rows[g * cog..];
        let wg = &w[g * cog * k..(g + 1) * cog * k];
        T::gemm(
            rows,
            cog,
            k,
            gy_g,
            (s.c_out, 1),
            wg,
            (k, 1),
            &mut gcols,
            T::zero(),
        );
        s.col2im_add(&gcols, g, &mut gx);
    }
    gx
}

/// Gradient of [`conv2d`] with respect to its weight, from the input and the upstream `gy`:
/// `∂L/∂W_g = gy_gᵀ · cols_g`. Linear in `x` and in `gy`.
///
/// Precondition: as [`conv2d_input_grad`].
pub fn conv2d_weight_grad<T: Element>(x: &[T], gy: &[T], s: &Conv2dShape) -> Vec<T> {
    let (k, rows, cog) = (s.k(), s.rows(), s.c_out / s.groups);
    let mut gw = vec![T::zero(); s.c_out * k];
    let g_rows = gy_rows(gy, s);
    for g in 0..s.groups {
        let cols = s.im2col(x, g);
        // gy_gᵀ is cog×rows: element (co, row) is g_rows[row·c_out + g·cog + co], strides (1, c_out).
        let gy_g = &g_rows[g * cog..];
        let out = &mut gw[g * cog * k..(g + 1) * cog * k];
        T::gemm(
            cog,
            rows,
            k,
            gy_g,
            (1, s.c_out),
            &cols,
            (k, 1),
            out,
            T::zero(),
        );
    }
    gw
}

/// Gradient of the bias of [`conv2d`]: `gy` summed over the batch and the output positions.
pub fn conv2d_bias_grad<T: Element>(gy: &[T], s: &Conv2dShape) -> Vec<T> {
    let plane = s.ho() * s.wo();
    let mut gb = vec![T::zero(); s.c_out];
    for (i, chunk) in gy.chunks_exact(plane.max(1)).enumerate() {
        let c = i % s.c_out;
        gb[c] = chunk.iter().fold(gb[c], |acc, &v| acc + v);
    }
    gb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    /// The convolution by its definition, for reference.
    fn naive(x: &[f64], w: &[f64], s: &Conv2dShape) -> Vec<f64> {
        let (ho, wo, cg, cog) = (s.ho(), s.wo(), s.c_in / s.groups, s.c_out / s.groups);
        let mut y = vec![0.0; s.n * s.c_out * ho * wo];
        for n in 0..s.n {
            for co in 0..s.c_out {
                let g = co / cog;
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for i in 0..s.kh {
                                for j in 0..s.kw {
                                    let (r, q) = (
                                        (oh * s.stride + i) as isize - s.padding as isize,
                                        (ow * s.stride + j) as isize - s.padding as isize,
                                    );
                                    if r < 0 || q < 0 || r >= s.h as isize || q >= s.w as isize {
                                        continue;
                                    }
                                    let xv = x[((n * s.c_in + g * cg + c) * s.h + r as usize)
                                        * s.w
                                        + q as usize];
                                    acc += xv * w[((co * cg + c) * s.kh + i) * s.kw + j];
                                }
                            }
                        }
                        y[((n * s.c_out + co) * ho + oh) * wo + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn shapes() -> Vec<Conv2dShape> {
        let base = Conv2dShape {
            n: 2,
            c_in: 4,
            h: 5,
            w: 4,
            c_out: 6,
            kh: 3,
            kw: 2,
            stride: 1,
            padding: 0,
            groups: 1,
        };
        vec![
            base,
            Conv2dShape {
                stride: 2,
                padding: 1,
                ..base
            },
            Conv2dShape {
                groups: 2,
                padding: 2,
                ..base
            },
            Conv2dShape {
                groups: 2,
                stride: 3,
                kh: 1,
                kw: 1,
                ..base
            },
        ]
    }

    #[test]
    fn matches_the_definition_and_backwards_match_finite_differences() {
        for s in shapes() {
            let x = values(s.n * s.c_in * s.h * s.w, 1);
            let w = values(s.c_out * s.k(), 2);
            let b = values(s.c_out, 3);
            let y = conv2d(&x, &w, None, &s);
            assert_close(&y, &naive(&x, &w, &s), 1e-12);
            let gy = values(y.len(), 4);
            check_vjp(
                |x| conv2d(x, &w, Some(&b), &s),
                &x,
                &gy,
                &conv2d_input_grad(&gy, &w, &s),
            );
            check_vjp(
                |w| conv2d(&x, w, Some(&b), &s),
                &w,
                &gy,
                &conv2d_weight_grad(&x, &gy, &s),
            );
            check_vjp(
                |b| conv2d(&x, &w, Some(b), &s),
                &b,
                &gy,
                &conv2d_bias_grad(&gy, &s),
            );
        }
    }
}
