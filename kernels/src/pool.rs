//! Max and average pooling over the planes of an NCHW tensor, each beside its backward.
//!
//! Windows of `k×k` step by `stride` over the input padded by `padding` on each side.
//! Max pooling ignores the padding; average pooling counts it as zeros (PyTorch's default
//! `count_include_pad=True`), so every window divides by `k²`.

use crate::par::Kind;
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
/// backward: the first maximum in row-major order, a NaN counting as the maximum. Planes
/// are independent: large inputs split into chunks of planes.
///
/// Precondition: `x.len() == planes·h·w`, every window overlaps the plane (`padding < k`).
pub fn max_pool2d<T: Element>(x: &[T], s: &Pool2dShape) -> (Vec<T>, Vec<usize>) {
    let (ho, wo) = (s.ho(), s.wo());
    let per = ho * wo;
    let mut values = vec![T::zero(); s.planes * per];
    let mut index = vec![0; s.planes * per];
    if per == 0 || s.h * s.w == 0 {
        return (values, index);
    }
    // Each plane takes the window's k² offsets in row-major order, each over every output
    // at once (selects, no branch), keeping the first maximum (a NaN wins, ties keep the
    // earlier): the window's first maximum in row-major order. Offset (i, j) of output
    // (oh, ow) reads element (oh·stride + i - padding, ow·stride + j - padding), when inside
    // the plane: which outputs it is inside for, and where they read, are the same for every
    // plane, so they are listed once.
    let hw = s.h * s.w;
    // Planes are folded a group at a time, so that a small plane (8×8: 64 outputs) does
    // not pay a pass's setup per offset and plane. Outputs of a group index their element
    // within the group (`q·h·w + row·w + col` for its plane `q`) until the end, in 32 bits
    // where the group's elements allow (twice the lanes of `usize` in a vector).
    let group = (GROUP_OUTPUTS / per).clamp(1, s.planes);
    if group.saturating_mul(hw) < u32::MAX as usize {
        max_pool_groups::<T, u32>(x, s, group, &mut values, &mut index);
    } else {
        max_pool_groups::<T, usize>(x, s, group, &mut values, &mut index);
    }
    (values, index)
}

/// Outputs a max-pooling pass folds at once (a group of whole planes, at least one).
const GROUP_OUTPUTS: usize = 1024;

/// [`max_pool2d`] over groups of `group` planes, indexing the group's elements by `I`.
fn max_pool_groups<T: Element, I: Slot>(
    x: &[T],
    s: &Pool2dShape,
    group: usize,
    values: &mut [T],
    index: &mut [usize],
) {
    let (hw, per) = (s.h * s.w, s.ho() * s.wo());
    let offsets: Vec<Offset<I>> = (0..s.k * s.k)
        .map(|t| Offset::new(s, t / s.k, t % s.k, group))
        .collect();
    let parts: Vec<(&mut [T], &mut [usize])> = values
        .chunks_mut(group * per)
        .zip(index.chunks_mut(group * per))
        .collect();
    let chunks = split::chunks_for(
        Kind::Product,
        parts.len(),
        s.planes.saturating_mul(per * s.k * s.k),
    );
    split::for_each_part(parts, chunks, &|g, (best, index)| {
        let planes = best.len() / per;
        let x = &x[g * group * hw..(g * group + planes) * hw];
        best.fill(T::neg_infinity());
        let mut at = vec![I::NONE; best.len()];
        for offset in &offsets {
            offset.fold(x, planes, best, &mut at);
        }
        for (q, (index, at)) in index.chunks_mut(per).zip(at.chunks(per)).enumerate() {
            for (i, &a) in index.iter_mut().zip(at) {
                *i = if a == I::NONE {
                    usize::MAX
                } else {
                    a.get() - q * hw
                };
            }
        }
    });
}

/// An index into a group of planes: `u32` where it fits, else `usize`.
trait Slot: Copy + Eq + Send + Sync {
    /// No element (the padding; no maximum yet).
    const NONE: Self;
    /// `i`, known to fit.
    fn of(i: usize) -> Self;
    /// As a `usize`.
    fn get(self) -> usize;
}

impl Slot for u32 {
    const NONE: Self = u32::MAX;
    fn of(i: usize) -> Self {
        u32::try_from(i).expect("a group's element index fits in 32 bits")
    }
    fn get(self) -> usize {
        self as usize
    }
}

impl Slot for usize {
    const NONE: Self = usize::MAX;
    fn of(i: usize) -> Self {
        i
    }
    fn get(self) -> usize {
        self
    }
}

/// One offset `(i, j)` of the pooling window: for every output of a group of planes, the
/// element of the group it reads there (`NONE` where that falls in the padding).
struct Offset<I> {
    reads: Vec<I>,
    /// Outputs per plane.
    per: usize,
    /// With stride 1 and outputs as wide as the plane, output `o` reads element `o + shift`
    /// (for the outputs from the first to the last inside the plane: `inside`, of the first
    /// plane), contiguously.
    shift: Option<(isize, std::ops::Range<usize>)>,
}

impl<I: Slot> Offset<I> {
    fn new(s: &Pool2dShape, i: usize, j: usize, group: usize) -> Self {
        let (ho, wo) = (s.ho(), s.wo());
        let per = ho * wo;
        let plane: Vec<Option<usize>> = (0..per)
            .map(|o| {
                let r = (o / wo * s.stride + i).wrapping_sub(s.padding);
                let c = (o % wo * s.stride + j).wrapping_sub(s.padding);
                (r < s.h && c < s.w).then_some(r * s.w + c)
            })
            .collect();
        let hw = s.h * s.w;
        let reads = (0..group)
            .flat_map(|q| {
                plane
                    .iter()
                    .map(move |r| r.map_or(I::NONE, |r| I::of(r + q * hw)))
            })
            .collect();
        let delta = (i * s.w + j) as isize - (s.padding * s.w + s.padding) as isize;
        let shift = (s.stride == 1 && wo == s.w).then(|| {
            let first = plane.iter().position(Option::is_some).unwrap_or(0);
            let end = plane.iter().rposition(Option::is_some).map_or(0, |e| e + 1);
            (delta, first..end.max(first))
        });
        Self { reads, per, shift }
    }

    /// Folds this offset's element into each output's running maximum `best` (at `at`), for
    /// the first `planes` planes of the group, whose data is `x`.
    fn fold<T: Element>(&self, x: &[T], planes: usize, best: &mut [T], at: &mut [I]) {
        let reads = &self.reads[..planes * self.per];
        match &self.shift {
            // An offset that falls in the padding for every output reads nothing.
            Some((_, inside)) if inside.is_empty() => {}
            Some((delta, inside)) => {
                // Contiguous reads, from the first plane's first output inside to the last
                // plane's last; the planes' edges still mask some outputs.
                let o = inside.start..(planes - 1) * self.per + inside.end;
                let from = (o.start as isize + delta) as usize;
                let src = &x[from..from + o.len()];
                let slots = best[o.clone()].iter_mut().zip(&mut at[o.clone()]);
                for (((b, a), &v), &i) in slots.zip(src).zip(&reads[o]) {
                    let take = i != I::NONE && (*a == I::NONE || beats(v, *b));
                    *b = if take { v } else { *b };
                    *a = if take { i } else { *a };
                }
            }
            None => {
                for ((b, a), &i) in best.iter_mut().zip(at.iter_mut()).zip(reads) {
                    // (a masked read: NONE is past the end)
                    let v = x.get(i.get()).copied().unwrap_or(T::zero());
                    let take = i != I::NONE && (*a == I::NONE || beats(v, *b));
                    *b = if take { v } else { *b };
                    *a = if take { i } else { *a };
                }
            }
        }
    }
}

/// Whether `v`, met after `best` in a window, replaces it as the maximum: larger, or the
/// first NaN.
#[inline]
fn beats<T: Element>(v: T, best: T) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// Gradient of [`max_pool2d`] from the indices it returned: each window's upstream gradient
/// added to its maximum's element, in output order within each plane (so overlapping windows
/// sum in a fixed order). Planes split into chunks when large.
///
/// Precondition: `gy.len() == index.len() == planes·ho·wo`, every index below `h·w`.
pub fn max_pool2d_backward<T: Element>(gy: &[T], index: &[usize], s: &Pool2dShape) -> Vec<T> {
    let (hw, per) = (s.h * s.w, s.ho() * s.wo());
    assert!(
        gy.len() == index.len() && gy.len() == s.planes * per,
        "max_pool2d_backward: {} gradients and {} indices for {} planes of {per} outputs",
        gy.len(),
        index.len(),
        s.planes
    );
    let mut gx = vec![T::zero(); s.planes * hw];
    if hw == 0 || per == 0 {
        return gx;
    }
    split::for_each_rows(Kind::Product, &mut gx, hw, 2 * per, &|first, part| {
        for (p, plane) in part.chunks_exact_mut(hw).enumerate() {
            let outputs = (first + p) * per..(first + p + 1) * per;
            for (&g, &at) in gy[outputs.clone()].iter().zip(&index[outputs]) {
                plane[at] = plane[at] + g;
            }
        }
    });
    gx
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
    split::for_each_rows(
        Kind::Product,
        &mut y,
        ho * wo,
        s.k * s.k * ho * wo,
        &|first, part| {
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
        },
    );
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
    split::for_each_rows(
        Kind::Product,
        &mut gx,
        s.h * s.w,
        s.k * s.k * ho * wo,
        &|first, part| {
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
        },
    );
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_vjp, values};

    /// 24 planes of 9×9, 3×3 windows with padding 1: enough work to split.
    fn split_shape(stride: usize) -> Pool2dShape {
        Pool2dShape {
            planes: 24,
            h: 9,
            w: 9,
            k: 3,
            stride,
            padding: 1,
        }
    }

    #[test]
    fn split_avg_pool_keeps_its_bits() {
        let s = split_shape(2);
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
    fn split_max_pool_keeps_its_bits_and_sums_overlaps_in_order() {
        let s = split_shape(1);
        let x = crate::gradcheck::values(s.planes * s.h * s.w, 43);
        let gy = crate::gradcheck::values(s.planes * s.ho() * s.wo(), 44);
        let run = |chunks| {
            split::with_chunks(chunks, || {
                let (y, index) = max_pool2d(&x, &s);
                let gx = max_pool2d_backward(&gy, &index, &s);
                (split::bits(&y), index, split::bits(&gx))
            })
        };
        let whole = run(1);
        for chunks in split::TEST_CHUNKS {
            assert!(run(chunks) == whole, "{chunks} chunks");
        }
        // Overlapping windows (stride 1) send several gradients to one element: the
        // backward is the derivative of the forward all the same.
        let (_, index) = max_pool2d(&x, &s);
        let gx = max_pool2d_backward(&gy, &index, &s);
        check_vjp(|x| max_pool2d(x, &s).0, &x, &gy, &gx);
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

    /// The first maximum of each window in row-major order, a NaN counting as the maximum:
    /// the definition, window by window.
    fn max_pool_by_definition(x: &[f32], s: &Pool2dShape) -> (Vec<f32>, Vec<usize>) {
        let (mut values, mut index) = (Vec::new(), Vec::new());
        for plane in x.chunks_exact(s.h * s.w) {
            for oh in 0..s.ho() {
                for ow in 0..s.wo() {
                    let (rows, cols) = s.window(oh, ow);
                    let mut found: Option<(f32, usize)> = None;
                    for r in rows {
                        for c in cols.clone() {
                            let v = plane[r * s.w + c];
                            if found.is_none_or(|(b, _)| v > b || (v.is_nan() && !b.is_nan())) {
                                found = Some((v, r * s.w + c));
                            }
                        }
                    }
                    let (v, i) = found.unwrap_or((f32::NEG_INFINITY, usize::MAX));
                    values.push(v);
                    index.push(i);
                }
            }
        }
        (values, index)
    }

    #[test]
    fn max_pool_is_the_first_maximum_of_each_window_with_ties_and_nans() {
        // Few distinct values (many ties), some NaNs, every window geometry.
        let x: Vec<f32> = (0..2 * 7 * 6)
            .map(|i| {
                if i % 17 == 5 {
                    f32::NAN
                } else {
                    ((i * 7) % 4) as f32
                }
            })
            .collect();
        for (k, stride, padding) in [
            (1, 1, 0),
            (2, 2, 0),
            (2, 2, 1),
            (3, 1, 1),
            (3, 2, 2),
            (4, 3, 1),
        ] {
            let s = Pool2dShape {
                planes: 2,
                h: 7,
                w: 6,
                k,
                stride,
                padding,
            };
            let (got, want) = (max_pool2d(&x, &s), max_pool_by_definition(&x, &s));
            assert_eq!(got.1, want.1, "k {k} stride {stride} padding {padding}");
            assert_eq!(split::bits(&got.0), split::bits(&want.0));
        }
    }

    #[test]
    fn planes_no_larger_than_the_padding_pool_by_the_definition() {
        // Stride 1 with window offsets that fall in the padding for every output (a plane
        // 1 high or 1 wide under k = 3, p = 1; 2 high under k = 5, p = 2), one plane and
        // groups of several.
        for (planes, h, w, k, padding) in [
            (1, 1, 5, 3, 1),
            (1, 1, 1, 3, 1),
            (3, 2, 4, 5, 2),
            (40, 20, 2, 5, 2),
            (300, 1, 3, 3, 1),
        ] {
            let s = Pool2dShape {
                planes,
                h,
                w,
                k,
                stride: 1,
                padding,
            };
            let x: Vec<f32> = (0..planes * h * w).map(|i| ((i * 7) % 5) as f32).collect();
            let (got, want) = (max_pool2d(&x, &s), max_pool_by_definition(&x, &s));
            assert_eq!(got.1, want.1, "{s:?}");
            assert_eq!(split::bits(&got.0), split::bits(&want.0), "{s:?}");
        }
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
