//! Where the parallel executor's workers run: persistent rayon pools, one per thread count,
//! kept across backward calls (no thread is spawned per call), or the rayon pool the caller
//! already runs in when it is large enough. The calling thread is worker 0; the pool
//! supplies the others. Under loom the helpers are loom threads instead.

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
    let spawn_all = |scope: &rayon::Scope<'_>| {
        for i in 1..workers {
            let work = Arc::clone(&work);
            scope.spawn(move |_| work(i));
        }
        work(0);
    };
    // NOTE: a backward function that itself waits on rayon work may, while waiting, steal
    // a worker loop of its own pass, which then waits for that very node: keep backward
    // functions free of rayon joins.
    // Called from a worker of a rayon pool with room for the helpers (a user's pool, or
    // `backflow train`'s): run there, so that forward and backward share one set of threads
    // instead of two pools competing for the cores.
    if rayon::current_thread_index().is_some() && rayon::current_num_threads() >= workers {
        rayon::in_place_scope(spawn_all);
    } else {
        helpers(workers - 1).in_place_scope(spawn_all);
    }
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
