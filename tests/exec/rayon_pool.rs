//! `backward` called from inside a user's rayon pool runs its helpers on that pool when it
//! is large enough (and on backflow's own pools otherwise); gradients are the same bits as
//! `Dfs` on the calling thread, and concurrent passes in one pool all finish.

use backflow::{BackwardOptions, Scheduler, Tensor};
use rayon::prelude::*;

/// 24 branches of `tanh(x·W)` summed; returns the weight gradients' bits.
fn wide_grads(opts: &BackwardOptions, seed: u64) -> Vec<Vec<u32>> {
    let x = Tensor::randn(&[8, 16], seed);
    let ws: Vec<Tensor> = (0..24)
        .map(|i| (Tensor::randn(&[16, 16], seed * 100 + i) * 0.25).requires_grad())
        .collect();
    let mut loss = Tensor::scalar(0.0);
    for w in &ws {
        loss = &loss + &x.matmul(w).expect("matmul").tanh().sum();
    }
    loss.backward_with(opts).expect("backward");
    ws.iter()
        .map(|w| {
            w.grad()
                .expect("grad")
                .data()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

#[test]
fn backward_inside_a_user_pool_matches_dfs() {
    let reference = wide_grads(&BackwardOptions::new().scheduler(Scheduler::Dfs), 1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    for threads in [2, 4, 8] {
        let opts = BackwardOptions::new().threads(threads);
        let got = pool.install(|| wide_grads(&opts, 1));
        assert_eq!(got, reference, "{threads} threads inside a 4-thread pool");
    }
}

#[test]
fn many_passes_at_once_inside_one_pool_all_finish() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let opts = BackwardOptions::new().threads(3);
    let results: Vec<_> = pool.install(|| {
        (0..24u64)
            .into_par_iter()
            .map(|seed| wide_grads(&opts, seed % 4))
            .collect()
    });
    for (seed, got) in results.iter().enumerate() {
        let want = wide_grads(
            &BackwardOptions::new().scheduler(Scheduler::Dfs),
            seed as u64 % 4,
        );
        assert_eq!(got, &want, "seed {seed}");
    }
}
