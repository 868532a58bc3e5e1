//! How the products (GEMM, batched GEMM, conv2d) cut their work into units and hand groups
//! of units to [`par::for_each`](crate::par::for_each) as chunks.
//!
//! A kernel first cuts its output into units whose boundaries depend only on the shape (row
//! blocks of a GEMM, batch entries, images); each unit's arithmetic is fixed by the unit
//! alone. The chunk count only decides which units run together, so the bits never depend
//! on it, nor on the thread that runs a chunk.

use crate::par::{Kind, Work};
use std::sync::Mutex;

/// The work, in flops, that the units of the products and reductions are sized by, where
/// their shape allows: a unit's boundaries depend on the shape and this constant alone,
/// never on the machine, so neither do the bits.
pub(crate) const UNIT_FLOPS: usize = 100_000;

/// The most chunks (and, for the weight gradient's tree, the most leaves) one kernel uses.
pub(crate) const MAX_CHUNKS: usize = 32;

/// How a kernel's units run: grouped into `count` chunks, `work` in all (0 flops when
/// unknown, as for the forced counts of the split tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunks {
    pub(crate) count: usize,
    pub(crate) work: Work,
}

#[cfg(test)]
impl Chunks {
    /// Exactly `count` chunks (clamped to the units where they run), of unknown work.
    pub(crate) fn exactly(count: usize) -> Self {
        let work = Work {
            flops: 0,
            kind: Kind::Product,
        };
        Self { count, work }
    }
}

/// The chunks for `units` units of `total_flops` of `kind` together: one, when the work is
/// under [`par::least_split_flops`](crate::par::least_split_flops) (the runner's estimate of
/// what is worth splitting), else one per [`UNIT_FLOPS`], at most one per unit and at most
/// [`MAX_CHUNKS`]: fine chunks, so that threads joining late still share the rest evenly.
pub(crate) fn chunks_for(kind: Kind, units: usize, total_flops: usize) -> Chunks {
    #[cfg(test)]
    if let Some(forced) = FORCED_CHUNKS.with(std::cell::Cell::get) {
        return Chunks::exactly(forced.clamp(1, units.max(1)));
    }
    Chunks {
        count: count_for(units, total_flops, crate::par::least_split_flops(kind)),
        work: Work {
            flops: total_flops,
            kind,
        },
    }
}

/// 1 under `least_split` flops, else one chunk per [`UNIT_FLOPS`] of `total_flops`, at
/// most one per unit and at most [`MAX_CHUNKS`], at least 1.
fn count_for(units: usize, total_flops: usize, least_split: usize) -> usize {
    if total_flops < least_split {
        return 1;
    }
    (total_flops / UNIT_FLOPS).clamp(1, units.clamp(1, MAX_CHUNKS))
}

/// Elements per unit of the elementwise kernels: a multiple of every vector width, so a
/// chunk boundary never moves an element between a vector loop and its scalar tail.
const BLOCK: usize = 4096;

/// Calls `f(start, part)` over consecutive parts of `out` that together cover it, `start`
/// being the index of the part's first element, split into chunks of whole [`BLOCK`]s by
/// the work (`flops_per_element` each). For elementwise kernels, where every element's
/// value depends on its own inputs only.
pub(crate) fn for_each_block<T: Send>(
    kind: Kind,
    out: &mut [T],
    flops_per_element: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let blocks = out.len().div_ceil(BLOCK);
    let chunks = chunks_for(kind, blocks, out.len().saturating_mul(flops_per_element));
    let span = BLOCK * blocks.div_ceil(chunks.count).max(1);
    for_each_span(out, span, chunks.work, f);
}

/// Calls `f(first_row, part)` over consecutive parts of `out`, rows of `cols` elements,
/// split into chunks of whole rows by the work (`flops_per_row` each). For kernels whose
/// rows are independent (softmax, layer norm).
pub(crate) fn for_each_rows<T: Send>(
    kind: Kind,
    out: &mut [T],
    cols: usize,
    flops_per_row: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let cols = cols.max(1);
    let rows = out.len() / cols;
    let chunks = chunks_for(kind, rows, rows.saturating_mul(flops_per_row));
    let rows_per_part = rows.div_ceil(chunks.count).max(1);
    for_each_span(out, rows_per_part * cols, chunks.work, &|start, part| {
        f(start / cols, part)
    });
}

/// `f(start, part)` for each part of `span` elements of `out` (the last may be shorter),
/// the parts run as chunks of `work` together; one part runs directly on this thread.
fn for_each_span<T: Send>(
    out: &mut [T],
    span: usize,
    work: Work,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    if out.len() <= span {
        f(0, out);
        return;
    }
    let parts: Vec<&mut [T]> = out.chunks_mut(span).collect();
    let count = parts.len();
    for_each_part(parts, Chunks { count, work }, &|i, part| f(i * span, part));
}

/// The units `start..end` that chunk `chunk` of `chunks` covers, of `units` in all: the
/// chunks cover the units in order, their sizes differing by at most one.
fn unit_range(chunk: usize, chunks: usize, units: usize) -> std::ops::Range<usize> {
    (chunk * units / chunks)..((chunk + 1) * units / chunks)
}

/// Calls `f(i, part)` for each `part` of `parts` (unit `i`), grouping the units into
/// `chunks.count` chunks (clamped to `1..=parts.len()`) that
/// [`par::for_each`](crate::par::for_each) runs. Each chunk holds the only reference to its
/// parts, so the parts are written without any sharing; the lock around each chunk's group
/// of parts is never contended.
pub(crate) fn for_each_part<P: Send>(
    parts: Vec<P>,
    chunks: Chunks,
    f: &(dyn Fn(usize, &mut P) + Sync),
) {
    for_each_part_with(parts, chunks, &|| (), &|i, part, _| f(i, part));
}

/// [`for_each_part`] with a scratch value that each chunk makes once with `scratch` and
/// passes to every unit it runs (a reused im2col buffer): the units must not let what they
/// read from it depend on what an earlier unit left there.
pub(crate) fn for_each_part_with<P: Send, S>(
    parts: Vec<P>,
    Chunks { count, work }: Chunks,
    scratch: &(dyn Fn() -> S + Sync),
    f: &(dyn Fn(usize, &mut P, &mut S) + Sync),
) {
    let units = parts.len();
    if units == 0 {
        return;
    }
    let chunks = count.clamp(1, units);
    if chunks == 1 {
        let mut scratch = scratch();
        for (i, mut part) in parts.into_iter().enumerate() {
            f(i, &mut part, &mut scratch);
        }
        return;
    }
    // Each chunk's parts in one group, taken whole by the one chunk that runs them.
    let mut parts = parts.into_iter();
    let groups: Vec<Mutex<Vec<P>>> = (0..chunks)
        .map(|c| {
            Mutex::new(
                parts
                    .by_ref()
                    .take(unit_range(c, chunks, units).len())
                    .collect(),
            )
        })
        .collect();
    crate::par::for_each(chunks, work, &|chunk| {
        let mut scratch = scratch();
        // A panic in another chunk poisons nothing this chunk reads: take its parts anyway.
        let mut group = groups[chunk].lock().unwrap_or_else(|e| e.into_inner());
        let start = unit_range(chunk, chunks, units).start;
        for (i, part) in group.iter_mut().enumerate() {
            f(start + i, part, &mut scratch);
        }
    });
}

/// The chunk counts the split tests force on every product kernel.
#[cfg(test)]
pub(crate) const TEST_CHUNKS: [usize; 4] = [1, 2, 4, 8];

#[cfg(test)]
thread_local! {
    /// The chunk count [`chunks_for`] returns on this thread (clamped to the units), set by
    /// [`with_chunks`].
    static FORCED_CHUNKS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every kernel it calls on this thread split into `chunks` chunks (at most
/// one per unit), whatever their work, on the test runner's threads.
#[cfg(test)]
pub(crate) fn with_chunks<R>(chunks: usize, f: impl FnOnce() -> R) -> R {
    install_test_runner();
    FORCED_CHUNKS.with(|c| c.set(Some(chunks)));
    let r = f();
    FORCED_CHUNKS.with(|c| c.set(None));
    r
}

/// The bits of `v`, for comparing split and whole results exactly.
#[cfg(test)]
pub(crate) fn bits<T: crate::Element>(v: &[T]) -> Vec<u64> {
    v.iter()
        .map(|&x| crate::Element::to_f64(x).to_bits())
        .collect()
}

/// Installs, once per test binary, a runner that gives every chunk its own thread, so the
/// split tests run chunks concurrently as the engine's pool would.
#[cfg(test)]
pub(crate) fn install_test_runner() {
    struct Threads;
    impl crate::par::ChunkRunner for Threads {
        fn run(&self, chunks: usize, _work: crate::par::Work, f: &(dyn Fn(usize) + Sync)) {
            std::thread::scope(|s| {
                for i in 0..chunks {
                    s.spawn(move || f(i));
                }
            });
        }
    }
    crate::par::set_runner(&Threads);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_unit_once_in_order() {
        for units in [1, 2, 5, 8, 33] {
            for chunks in 1..=units {
                let covered: Vec<usize> = (0..chunks)
                    .flat_map(|c| unit_range(c, chunks, units))
                    .collect();
                assert_eq!(covered, (0..units).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn small_work_is_one_chunk_and_large_work_is_capped() {
        let least = 2_500_000;
        assert_eq!(count_for(100, least - 1, least), 1);
        // From the threshold on, one chunk per unit of work.
        assert_eq!(count_for(100, least, least), 25);
        assert_eq!(count_for(3, 100 * least, least), 3);
        assert_eq!(count_for(1000, 1000 * least, least), MAX_CHUNKS);
        assert_eq!(count_for(0, 0, least), 1);
        // Without a runner nothing splits; a runner that knows nothing says 0.
        assert_eq!(count_for(1000, usize::MAX - 1, usize::MAX), 1);
        assert_eq!(count_for(5, 7 * UNIT_FLOPS, 0), 5);
    }

    #[test]
    fn a_kernel_splits_by_the_runners_estimate() {
        install_test_runner();
        let kind = Kind::Elementwise;
        let least = crate::par::least_split_flops(kind);
        assert_eq!(least, crate::par::DEFAULT_LEAST_SPLIT_FLOPS);
        assert_eq!(chunks_for(kind, 100, least - 1).count, 1);
        let chunks = chunks_for(kind, 100, least);
        let count = least / UNIT_FLOPS;
        let work = Work { flops: least, kind };
        assert_eq!(chunks, Chunks { count, work });
    }

    #[test]
    fn every_part_is_visited_once_whatever_the_chunk_count() {
        install_test_runner();
        for chunks in [0, 1, 3, 7, 50] {
            let mut out = vec![0usize; 7];
            let parts: Vec<&mut usize> = out.iter_mut().collect();
            for_each_part(parts, Chunks::exactly(chunks), &|i, p| **p += i + 1);
            assert_eq!(out, (1..=7).collect::<Vec<_>>());
        }
    }
}
