//! Where the parallel executor's workers run: persistent rayon pools, one per thread count,
//! kept across backward calls (no thread is spawned per call). The calling thread is worker
//! 0; the pool supplies the others. Under loom the helpers are loom threads instead.

use crate::sync::Arc;

/// Runs `work(i)` for every `i` in `0..workers`, with `work(0)` on the calling thread, and
/// returns once all have returned.
#[cfg(not(loom))]
pub(super) fn run_workers<F>(workers: usize, work: Arc<F>)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    if workers <= 1 {
        work(0);
        return;
    }
    let pool = helpers(workers - 1);
    pool.in_place_scope(|scope| {
        for i in 1..workers {
            let work = Arc::clone(&work);
            scope.spawn(move |_| work(i));
        }
        work(0);
    });
}

/// The persistent pool of `helpers` threads.
#[cfg(not(loom))]
fn helpers(helpers: usize) -> Arc<rayon::ThreadPool> {
    use crate::sync::Mutex;
    use rustc_hash::FxHashMap;
    use std::sync::OnceLock;

    static POOLS: OnceLock<Mutex<FxHashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(FxHashMap::default()));
    let mut pools = pools.lock();
    Arc::clone(pools.entry(helpers).or_insert_with(|| {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(helpers)
                .thread_name(|i| format!("backflow-worker-{}", i + 1))
                .build()
                .expect("backflow: cannot start the worker threads"),
        )
    }))
}

/// Runs `work(i)` for every `i` in `0..workers`, `work(0)` on the calling thread.
#[cfg(loom)]
pub(super) fn run_workers<F>(workers: usize, work: Arc<F>)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let handles: Vec<_> = (1..workers)
        .map(|i| {
            let work = Arc::clone(&work);
            loom::thread::spawn(move || work(i))
        })
        .collect();
    work(0);
    for h in handles {
        h.join().expect("loom worker panicked");
    }
}
