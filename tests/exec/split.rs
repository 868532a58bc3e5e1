//! One pool for nodes, kernel chunks and the forward pass: split kernels and `parallel_map`
//! run on the executor's idle threads, stay within `with_threads`, keep their bits, and never
//! hang when they nest inside each other and inside re-entrant backward passes.

use crate::common::{exec_configs, watchdog};
use backflow::{
    enable_grad, parallel_for, parallel_map, with_threads, BackwardOptions, Scheduler, Tensor,
};
use std::collections::HashSet;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Runs chunks through `run`; chunk 0 waits until a thread other than its own has run a
/// chunk, so the call returns only if two threads took part. Returns the threads that ran
/// chunks.
fn threads_that_ran(run: impl Fn(&(dyn Fn(usize) + Sync))) -> HashSet<ThreadId> {
    let seen = Mutex::new(HashSet::new());
    run(&|i| {
        seen.lock().unwrap().insert(std::thread::current().id());
        if i == 0 {
            // A watchdog, not a timing assertion: a missing helper fails after a minute.
            let start = Instant::now();
            while seen.lock().unwrap().len() < 2 {
                assert!(start.elapsed() < Duration::from_secs(60), "no helper came");
                std::thread::yield_now();
            }
        }
    });
    seen.into_inner().unwrap()
}

#[test]
fn a_split_kernel_runs_on_an_idle_helper() {
    watchdog("kernel chunks", 120, || {
        let seen = with_threads(2, || {
            let work = backflow_kernels::par::Work {
                flops: 0,
                kind: backflow_kernels::par::Kind::Product,
            };
            threads_that_ran(|f| backflow_kernels::par::for_each(8, work, f))
        });
        assert!(seen.len() >= 2, "chunks ran on {} thread(s)", seen.len());
    });
}

#[test]
fn split_kernels_teach_the_cost_model_their_speed() {
    // Before any split the model assumes 10 Gflop/s; a 512³ product (268 Mflop) splits
    // into chunks whose measured speed replaces that guess.
    let a = Tensor::<f32>::randn(&[512, 512], 3);
    let first_guess = 1e10;
    for _ in 0..50 {
        with_threads(2, || backflow::no_grad(|| a.matmul(&a).unwrap()));
        let e = backflow::split_estimate();
        if e.measured && e.flops_per_second != first_guess {
            break;
        }
    }
    let e = backflow::split_estimate();
    assert!(e.splitting && e.measured, "{e}");
    assert_ne!(e.flops_per_second, first_guess, "{e}");
    assert!(
        e.flops_per_second > 0.0 && e.helper_arrival > Duration::ZERO,
        "{e}"
    );
    assert!((200_000..=40_000_000).contains(&e.least_split_flops), "{e}");
}

#[test]
fn parallel_for_runs_on_an_idle_helper() {
    watchdog("parallel_for", 120, || {
        let seen = with_threads(2, || threads_that_ran(|f| parallel_for(4, f)));
        assert_eq!(seen.len(), 2, "within with_threads(2): exactly two threads");
    });
}

#[test]
fn with_threads_1_runs_every_chunk_on_the_caller_in_order() {
    let order = Mutex::new(Vec::new());
    let caller = std::thread::current().id();
    with_threads(1, || {
        parallel_for(16, &|i| {
            assert_eq!(std::thread::current().id(), caller);
            order.lock().unwrap().push(i);
        })
    });
    assert_eq!(order.into_inner().unwrap(), (0..16).collect::<Vec<_>>());
}

#[test]
fn a_panic_in_an_item_reaches_the_caller_after_every_item_ran() {
    let ran = Mutex::new(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parallel_map(&[0, 1, 2, 3], |&i| {
            *ran.lock().unwrap() += 1;
            assert_ne!(i, 2, "item 2 fails");
            i
        })
    }));
    let payload = result.expect_err("the panic is resumed");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("item 2 fails"), "{message}");
    assert_eq!(*ran.lock().unwrap(), 4);
}

/// A product big enough to split (64×64×64 is about 0.5 Mflop), differentiated.
fn product_grad(seed: f32, opts: &BackwardOptions) -> Vec<u32> {
    let a = Tensor::from_vec(
        (0..64 * 64)
            .map(|i| ((i as f32) * 0.37 + seed).sin())
            .collect(),
        &[64, 64],
    )
    .unwrap()
    .requires_grad();
    let y = a.matmul(&a).unwrap().tanh().matmul(&a).unwrap().sum();
    y.backward_with(opts).expect("backward");
    a.grad()
        .unwrap()
        .to_vec()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn nested_splits_in_reentrant_backward_never_hang() {
    for opts in exec_configs() {
        let label = format!("{:?} at {}", opts.get_scheduler(), opts.get_threads());
        watchdog(&label, 120, move || {
            let reference = with_threads(1, || {
                product_grad(0.5, &BackwardOptions::new().scheduler(Scheduler::Dfs))
            });
            // Forward items (a split map) each run split kernels and a backward pass whose
            // hook runs another map of split kernels and backward passes.
            let outer = parallel_map(&[0, 1, 2, 3], |_| {
                let x = Tensor::from_vec(vec![1.0f32; 4096], &[64, 64])
                    .unwrap()
                    .requires_grad();
                let mid = x.matmul(&x).unwrap();
                let inner_opts = opts.clone();
                let bits = std::sync::Arc::new(Mutex::new(Vec::new()));
                let sink = std::sync::Arc::clone(&bits);
                mid.register_hook(move |_g| {
                    // Backward functions run without recording: the inner graphs opt back in.
                    let got =
                        enable_grad(|| parallel_map(&[0, 1], |_| product_grad(0.5, &inner_opts)));
                    sink.lock().unwrap().extend(got);
                    None
                });
                mid.sum().backward_with(&opts).expect("outer backward");
                let got = bits.lock().unwrap().clone();
                got
            });
            for got in outer {
                assert_eq!(got.len(), 2);
                assert!(got.iter().all(|g| *g == reference), "bits differ");
            }
        });
    }
}
