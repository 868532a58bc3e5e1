//! 2-D convolution over NCHW, one image at a time, beside its two backwards.
//!
//! The batch is cut into tiles of a few images, by the shape alone. For a tile and group `g`,
//! im2col lays out the `C/g · kH · kW` input values each output position's window reads
//! (zero where the window hangs over the padding) as the rows of a `[k, images·ho·wo]`
//! matrix `cols`. Then `y_g = W_g · cols`, `∂L/∂W_g = gy_g · colsᵀ` summed over the tiles,
//! and `∂L/∂cols = W_gᵀ · gy_g`, which col2im adds back into the input's gradient.
//!
//! The im2col buffer holds one tile, not the batch, and is reused by every tile a chunk
//! runs. Large convolutions split over tiles: the forward and the input gradient write each
//! tile's own part of the output, and the weight gradient sums per-tile partial gradients
//! in tile order, a tree whose shape depends only on the shape. So the bits never depend on
//! the chunk or thread count.

use std::ops::Range;

use crate::par::Kind;
use crate::{gemm, split, Element};

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

    /// Elements of one filter (one row of `cols`): `c_in/groups · kh · kw`.
    fn k(&self) -> usize {
        self.c_in / self.groups * self.kh * self.kw
    }

    /// Output positions of one image (the columns of `cols`): `ho · wo`.
    fn plane(&self) -> usize {
        self.ho() * self.wo()
    }

    /// Elements of one input image: `c_in · h · w`.
    fn image(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// The flops of one image's product, over every group: `2 · c_out · k · ho · wo`.
    fn image_flops(&self) -> usize {
        gemm::flops(self.c_out, self.k(), self.plane())
    }

    /// Whether every window is one input element: a 1×1 kernel, stride 1, no padding.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    /// Images per tile, from the shape alone: enough for [`TILE_COLUMNS`] columns of `cols`
    /// and [`split::UNIT_FLOPS`] of work, but no more than leaves [`MIN_TILES`] tiles.
    fn tile(&self) -> usize {
        TILE_COLUMNS
            .div_ceil(self.plane().max(1))
            .max(split::UNIT_FLOPS.div_ceil(self.image_flops().max(1)))
            .min(self.n.div_ceil(MIN_TILES))
            .max(1)
    }

    /// The tiles of the batch: `tiles()` of [`tile`](Self::tile) images (the last may hold
    /// fewer).
    fn tiles(&self) -> usize {
        self.n.div_ceil(self.tile())
    }

    /// The chunk count for the work of the whole batch.
    fn chunks(&self) -> split::Chunks {
        split::chunks_for(
            Kind::Product,
            self.tiles(),
            self.image_flops().saturating_mul(self.n),
        )
    }

    /// Fills `buf` with the `[k, images·ho·wo]` matrix `cols` of group `g` of the `images`
    /// of `x` (`[n, c_in, h, w]`): image `i`'s output positions are columns
    /// `i·ho·wo..(i+1)·ho·wo`, each holding what its window reads (zero over the padding).
    fn fill_cols<T: Element>(&self, x: &[T], images: Range<usize>, g: usize, buf: &mut Vec<T>) {
        let (cg, hw, wo, plane) = (
            self.c_in / self.groups,
            self.h * self.w,
            self.wo(),
            self.plane(),
        );
        let ld = images.len() * plane;
        buf.clear();
        buf.resize(self.k() * ld, T::zero());
        if ld == 0 {
            return;
        }
        for (row, dst) in buf.chunks_exact_mut(ld).enumerate() {
            let (c, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let (ohs, ows) = (self.valid(self.ho(), i, self.h), self.valid(wo, j, self.w));
            if ohs.is_empty() || ows.is_empty() {
                // This offset reads only padding (a kernel wider than the padded image):
                // the row stays zero.
                continue;
            }
            if let Some((span, delta)) = self.shift(&ohs, &ows, i, j) {
                // One copy a plane: output o reads element o + delta; the columns that
                // wrapped around to the other edge are padding, zero again.
                let from = span.start.wrapping_add_signed(delta);
                for (n, dst) in images.clone().zip(dst.chunks_exact_mut(plane)) {
                    let src = &x[(n * self.c_in + g * cg + c) * hw..][..hw];
                    dst[span.clone()].copy_from_slice(&src[from..from + span.len()]);
                }
                self.clear_columns(dst, &ows);
                continue;
            }
            for (n, dst) in images.clone().zip(dst.chunks_exact_mut(plane)) {
                let src = &x[(n * self.c_in + g * cg + c) * hw..][..hw];
                for oh in ohs.clone() {
                    // Every tap of this row is inside the image; the rest stays zero (padding).
                    let r = oh * self.stride + i - self.padding;
                    let (out, src) = (&mut dst[oh * wo..][..wo], &src[r * self.w..][..self.w]);
                    if self.stride == 1 {
                        let q = ows.start + j - self.padding;
                        copy_short(&mut out[ows.clone()], &src[q..q + ows.len()]);
                    } else {
                        for ow in ows.clone() {
                            out[ow] = src[ow * self.stride + j - self.padding];
                        }
                    }
                }
            }
        }
    }

    /// Fills `buf` with group `g`'s `[c_out/groups, images·ho·wo]` rows of `gy`
    /// (`[n, c_out, ho, wo]`), the images side by side as in [`fill_cols`](Self::fill_cols).
    fn fill_rows<T: Element>(&self, gy: &[T], images: Range<usize>, g: usize, buf: &mut Vec<T>) {
        let (cog, plane) = (self.c_out / self.groups, self.plane());
        let ld = images.len() * plane;
        buf.clear();
        buf.resize(cog * ld, T::zero());
        if ld == 0 {
            return;
        }
        for (co, dst) in buf.chunks_exact_mut(ld).enumerate() {
            for (n, dst) in images.clone().zip(dst.chunks_exact_mut(plane)) {
                dst.copy_from_slice(&gy[(n * self.c_out + g * cog + co) * plane..][..plane]);
            }
        }
    }

    /// For a stride-1 convolution whose output rows are as wide as the input's, and kernel
    /// offset `(i, j)` with non-empty valid ranges `ohs`, `ows`: output position `o` (in
    /// its plane) reads input element `o + delta`, for the contiguous span of positions
    /// from the first inside (row `ohs.start`, column `ows.start`) to the last; the span's
    /// positions in columns outside `ows` wrapped around to the other edge and read padding.
    fn shift(
        &self,
        ohs: &Range<usize>,
        ows: &Range<usize>,
        i: usize,
        j: usize,
    ) -> Option<(Range<usize>, isize)> {
        let wo = self.wo();
        if self.stride != 1 || wo != self.w {
            return None;
        }
        let span = ohs.start * wo + ows.start..(ohs.end - 1) * wo + ows.end;
        let delta = (i * self.w + j) as isize - (self.padding * self.w + self.padding) as isize;
        Some((span, delta))
    }

    /// Zeroes the columns outside `ows` in every row of `rows` (whole rows of `wo`: the
    /// planes of a tile side by side). Rows outside a plane's valid range are zero already,
    /// so each column is one strided pass over the whole tile, not one a plane.
    fn clear_columns<T: Element>(&self, rows: &mut [T], ows: &Range<usize>) {
        let wo = self.wo();
        for c in (0..ows.start).chain(ows.end..wo) {
            rows.iter_mut()
                .skip(c)
                .step_by(wo)
                .for_each(|v| *v = T::zero());
        }
    }

    /// The output positions `o` in `0..out` whose window, at kernel offset `i`, reads inside
    /// an input of `len` (`0 <= o·stride + i - padding < len`): a range, maybe empty.
    fn valid(&self, out: usize, i: usize, len: usize) -> Range<usize> {
        let lo = self.padding.saturating_sub(i).div_ceil(self.stride);
        let hi = (len + self.padding)
            .checked_sub(i)
            .map_or(0, |v| v.div_ceil(self.stride))
            .min(out);
        lo.min(hi)..hi
    }

    /// Adds the `[k, images·ho·wo]` gradient `gcols` of group `g` back into `gx`, the
    /// gradient of those `images` (`[images, c_in, h, w]`): the adjoint of
    /// [`fill_cols`](Self::fill_cols), each input element receiving every window's share.
    /// `gcols` is scratch: the entries over the padding may be zeroed.
    fn col2im_add<T: Element>(&self, gcols: &mut [T], images: usize, g: usize, gx: &mut [T]) {
        let (cg, hw, wo, plane) = (
            self.c_in / self.groups,
            self.h * self.w,
            self.wo(),
            self.plane(),
        );
        let ld = images * plane;
        if ld == 0 {
            return;
        }
        for (row, src) in gcols.chunks_exact_mut(ld).enumerate() {
            let (c, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let (ohs, ows) = (self.valid(self.ho(), i, self.h), self.valid(wo, j, self.w));
            if ohs.is_empty() || ows.is_empty() {
                // This offset read only padding: it has no gradient to give back.
                continue;
            }
            if let Some((span, delta)) = self.shift(&ohs, &ows, i, j) {
                // One sum a plane, the adjoint of fill_cols' copy: the entries over the
                // wrapped-around columns (padding) are zeroed first, so they add nothing.
                let to = span.start.wrapping_add_signed(delta);
                self.clear_columns(src, &ows);
                for (n, src) in src.chunks_exact(plane).enumerate() {
                    let dst = &mut gx[(n * self.c_in + g * cg + c) * hw..][..hw];
                    let dst = &mut dst[to..to + span.len()];
                    for (d, &v) in dst.iter_mut().zip(&src[span.clone()]) {
                        *d = *d + v;
                    }
                }
                continue;
            }
            for (n, src) in src.chunks_exact(plane).enumerate() {
                let dst = &mut gx[(n * self.c_in + g * cg + c) * hw..][..hw];
                for oh in ohs.clone() {
                    let r = oh * self.stride + i - self.padding;
                    let (vals, dst) = (&src[oh * wo..][..wo], &mut dst[r * self.w..][..self.w]);
                    if self.stride == 1 {
                        let q = ows.start + j - self.padding;
                        let dst = &mut dst[q..q + ows.len()];
                        for (d, &v) in dst.iter_mut().zip(&vals[ows.clone()]) {
                            *d = *d + v;
                        }
                    } else {
                        for ow in ows.clone() {
                            let q = ow * self.stride + j - self.padding;
                            dst[q] = dst[q] + vals[ow];
                        }
                    }
                }
            }
        }
    }
}

/// The columns of `cols` a tile aims for: one image's handful of output positions makes a
/// product too thin to run fast, so a tile lays several images side by side.
const TILE_COLUMNS: usize = 256;

/// The fewest tiles a batch large enough is cut into, so that its tiles can run in parallel.
const MIN_TILES: usize = 16;

/// The scratch each chunk reuses for every tile it runs: `cols` and a second matrix.
type Scratch<T> = (Vec<T>, Vec<T>);

/// `y = conv2d(x, w) + b` over NCHW: `x` is `[n, c_in, h, w]`, `w` is `[c_out, c_in/groups,
/// kh, kw]`, `b` (if given) is `[c_out]`; `y` is `[n, c_out, ho, wo]`.
///
/// Precondition: the slices match `s`, `s.groups` divides both channel counts, the padded
/// input is at least the kernel, `s.stride >= 1`.
pub fn conv2d<T: Element>(x: &[T], w: &[T], b: Option<&[T]>, s: &Conv2dShape) -> Vec<T> {
    conv2d_in_chunks(x, w, b, s, s.chunks())
}

/// [`conv2d`] with the tiles grouped into `chunks` chunks.
pub(crate) fn conv2d_in_chunks<T: Element>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    s: &Conv2dShape,
    chunks: split::Chunks,
) -> Vec<T> {
    let (k, plane, cog, tile) = (s.k(), s.plane(), s.c_out / s.groups, s.tile());
    let mut y = vec![T::zero(); s.n * s.c_out * plane];
    if y.is_empty() {
        return y;
    }
    let parts: Vec<&mut [T]> = y.chunks_mut(tile * s.c_out * plane).collect();
    split::for_each_part_with(parts, chunks, &Scratch::default, &|t, y_t, (cols, out)| {
        let images = t * tile..(t * tile + tile).min(s.n);
        let ld = images.len() * plane;
        if s.pointwise() {
            // cols is the image itself: one plain product per image, straight into y.
            for (i, n) in images.enumerate() {
                for g in 0..s.groups {
                    let x_g = &x[(n * s.c_in + g * k) * plane..][..k * plane];
                    let out = &mut y_t[(i * s.c_out + g * cog) * plane..][..cog * plane];
                    let wg = &w[g * cog * k..][..cog * k];
                    T::gemm(cog, k, plane, wg, (k, 1), x_g, (plane, 1), out, T::zero());
                }
            }
            if let Some(b) = b {
                for (v, &bias) in y_t.chunks_exact_mut(plane).zip(b.iter().cycle()) {
                    v.iter_mut().for_each(|v| *v = *v + bias);
                }
            }
            return;
        }
        for g in 0..s.groups {
            // y_g = W_g · cols: [cog, k]·[k, ld], then each image's rows to its place in y.
            s.fill_cols(x, images.clone(), g, cols);
            out.resize(cog * ld, T::zero());
            let wg = &w[g * cog * k..][..cog * k];
            T::gemm(cog, k, ld, wg, (k, 1), cols, (ld, 1), out, T::zero());
            for (co, src) in out.chunks_exact(ld).enumerate() {
                let bias = b.map_or(T::zero(), |b| b[g * cog + co]);
                for (i, src) in src.chunks_exact(plane).enumerate() {
                    let dst = &mut y_t[(i * s.c_out + g * cog + co) * plane..][..plane];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + bias);
                }
            }
        }
    });
    y
}

/// Gradient of [`conv2d`] with respect to its input, from the upstream `gy` and the weight:
/// `∂L/∂cols = W_gᵀ · gy_g` per tile of images, added back to the input positions by
/// col2im. Linear in `gy` and in `w` (a transposed convolution).
///
/// Precondition: as [`conv2d`], and `gy` is `[n, c_out, ho, wo]`.
pub fn conv2d_input_grad<T: Element>(gy: &[T], w: &[T], s: &Conv2dShape) -> Vec<T> {
    conv2d_input_grad_in_chunks(gy, w, s, s.chunks())
}

/// [`conv2d_input_grad`] with the tiles grouped into `chunks` chunks.
pub(crate) fn conv2d_input_grad_in_chunks<T: Element>(
    gy: &[T],
    w: &[T],
    s: &Conv2dShape,
    chunks: split::Chunks,
) -> Vec<T> {
    let (k, plane, cog, tile) = (s.k(), s.plane(), s.c_out / s.groups, s.tile());
    let mut gx = vec![T::zero(); s.n * s.image()];
    if gx.is_empty() || plane == 0 {
        return gx;
    }
    let parts: Vec<&mut [T]> = gx.chunks_mut(tile * s.image()).collect();
    split::for_each_part_with(
        parts,
        chunks,
        &Scratch::default,
        &|t, gx_t, (gcols, rows)| {
            let images = t * tile..(t * tile + tile).min(s.n);
            let ld = images.len() * plane;
            for g in 0..s.groups {
                // W_gᵀ is k×cog: element (p, co) is W_g[co·k + p], strides (1, k).
                let wg = &w[g * cog * k..][..cog * k];
                if s.pointwise() {
                    // ∂L/∂cols is the input's gradient itself: one plain product per image.
                    for (i, n) in images.clone().enumerate() {
                        let gy_g = &gy[(n * s.c_out + g * cog) * plane..][..cog * plane];
                        let out = &mut gx_t[(i * s.c_in + g * k) * plane..][..k * plane];
                        T::gemm(k, cog, plane, wg, (1, k), gy_g, (plane, 1), out, T::zero());
                    }
                    continue;
                }
                s.fill_rows(gy, images.clone(), g, rows);
                gcols.resize(k * ld, T::zero());
                T::gemm(k, cog, ld, wg, (1, k), rows, (ld, 1), gcols, T::zero());
                s.col2im_add(gcols, images.len(), g, gx_t);
            }
        },
    );
    gx
}

/// Gradient of [`conv2d`] with respect to its weight, from the input and the upstream `gy`:
/// `∂L/∂W_g = Σ_tiles gy_g · cols_gᵀ`. Linear in `x` and in `gy`. The sum over the batch is
/// a tree whose shape depends only on `s`: one product per tile of images, then the tiles'
/// partial gradients added in order.
///
/// Precondition: as [`conv2d_input_grad`].
pub fn conv2d_weight_grad<T: Element>(x: &[T], gy: &[T], s: &Conv2dShape) -> Vec<T> {
    conv2d_weight_grad_in_chunks(x, gy, s, s.chunks())
}

/// [`conv2d_weight_grad`] with the tiles (the leaves of its tree) grouped into `chunks`
/// chunks.
pub(crate) fn conv2d_weight_grad_in_chunks<T: Element>(
    x: &[T],
    gy: &[T],
    s: &Conv2dShape,
    chunks: split::Chunks,
) -> Vec<T> {
    let (k, plane, cog, tile) = (s.k(), s.plane(), s.c_out / s.groups, s.tile());
    let mut leaves = vec![vec![T::zero(); s.c_out * k]; s.tiles().max(1)];
    if plane > 0 && k > 0 {
        let parts: Vec<&mut Vec<T>> = leaves.iter_mut().collect();
        split::for_each_part_with(parts, chunks, &Scratch::default, &|t, gw, (cols, rows)| {
            let images = t * tile..(t * tile + tile).min(s.n);
            let ld = images.len() * plane;
            for g in 0..s.groups {
                // colsᵀ is ld×k: element (q, p) is cols[p·ld + q], strides (1, ld).
                s.fill_cols(x, images.clone(), g, cols);
                s.fill_rows(gy, images.clone(), g, rows);
                let out = &mut gw[g * cog * k..][..cog * k];
                T::gemm(cog, ld, k, rows, (ld, 1), cols, (1, ld), out, T::zero());
            }
        });
    }
    let mut leaves = leaves.into_iter();
    let first = leaves.next().unwrap_or_default();
    leaves.fold(first, |mut sum, leaf| {
        sum.iter_mut().zip(&leaf).for_each(|(s, &v)| *s = *s + v);
        sum
    })
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

/// `dst.copy_from_slice(src)` for the short rows of small images: up to 16 elements as two
/// overlapping copies of a fixed length (moves in registers), where `copy_from_slice` of a
/// length known only at run time is a `memcpy` call that costs more than the copy.
///
/// # Panics
///
/// If the lengths differ.
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    assert_eq!(n, src.len(), "copy_short: lengths differ");
    match n {
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        4..8 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        2..4 => {
            dst[..2].copy_from_slice(&src[..2]);
            dst[n - 2..].copy_from_slice(&src[n - 2..]);
        }
        1 => dst[0] = src[0],
        _ => dst.copy_from_slice(src),
    }
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
            // Pointwise: the image itself is `cols`, with no im2col.
            Conv2dShape {
                groups: 2,
                kh: 1,
                kw: 1,
                ..base
            },
            // Stride 1, output rows as wide as the input's: one shifted copy a plane.
            Conv2dShape {
                kw: 3,
                padding: 1,
                ..base
            },
            Conv2dShape {
                kh: 5,
                kw: 5,
                padding: 2,
                groups: 2,
                ..base
            },
            Conv2dShape {
                kh: 5,
                kw: 3,
                padding: 1,
                ..base
            },
            // Kernels wider than the padded image: some offsets read only padding.
            Conv2dShape {
                h: 3,
                w: 1,
                kw: 5,
                padding: 2,
                ..base
            },
            Conv2dShape {
                h: 1,
                w: 2,
                kh: 5,
                kw: 5,
                padding: 2,
                ..base
            },
        ]
    }

    #[test]
    fn short_copies_copy_every_length() {
        for n in 0..40 {
            let src: Vec<u32> = (1..=n as u32).collect();
            let mut dst = vec![0; n];
            copy_short(&mut dst, &src);
            assert_eq!(dst, src, "length {n}");
        }
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

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_chunk_count_gives_the_same_bits() {
        crate::split::install_test_runner();
        let base = Conv2dShape {
            n: 16,
            c_in: 4,
            h: 8,
            w: 8,
            c_out: 8,
            kh: 3,
            kw: 3,
            stride: 1,
            padding: 1,
            groups: 1,
        };
        let pointwise = Conv2dShape {
            c_in: 32,
            c_out: 32,
            kh: 1,
            kw: 1,
            padding: 0,
            ..base
        };
        let strided = Conv2dShape {
            c_in: 16,
            c_out: 32,
            groups: 2,
            stride: 2,
            ..base
        };
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        for s in [base, pointwise, strided] {
            // More than one leaf, so the weight gradient's tree has something to add up.
            assert!(s.tiles() > 1, "{s:?}");
            let x = f32s(values(s.n * s.image(), 1));
            let w = f32s(values(s.c_out * s.k(), 2));
            let b = f32s(values(s.c_out, 3));
            let gy = f32s(values(s.n * s.c_out * s.plane(), 4));
            let y = conv2d(&x, &w, Some(&b), &s);
            let gx = conv2d_input_grad(&gy, &w, &s);
            let gw = conv2d_weight_grad(&x, &gy, &s);
            for n_chunks in crate::split::TEST_CHUNKS {
                let at = format!("{s:?} in {n_chunks} chunks");
                let chunks = crate::split::Chunks::exactly(n_chunks);
                let y_c = conv2d_in_chunks(&x, &w, Some(&b), &s, chunks);
                assert_eq!(bits(&y_c), bits(&y), "forward, {at}");
                let gx_c = conv2d_input_grad_in_chunks(&gy, &w, &s, chunks);
                assert_eq!(bits(&gx_c), bits(&gx), "input gradient, {at}");
                let gw_c = conv2d_weight_grad_in_chunks(&x, &gy, &s, chunks);
                assert_eq!(bits(&gw_c), bits(&gw), "weight gradient, {at}");
            }
        }
    }
}
