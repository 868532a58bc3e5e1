//! `Parallel`, `Dfs` and `Kahn` give bitwise-identical gradients in `Deterministic` mode, at
//! every thread count (more threads than cores on purpose), on the standard workloads.

use backflow::{Accumulation, BackwardOptions, Scheduler, Tensor};

const THREADS: [usize; 5] = [1, 2, 3, 4, 8];

/// Runs `build` (which returns the leaves and the loss) under every scheduler and thread
/// count, and checks that every leaf gradient is bitwise equal to `Dfs`'s.
fn assert_bitwise_equal(build: impl Fn() -> (Vec<Tensor>, Tensor)) {
    let run = |scheduler, threads| {
        let (leaves, loss) = build();
        let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
        loss.backward_with(&opts).expect("backward");
        leaves
            .iter()
            .map(|l| {
                l.grad()
                    .map(|g| g.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>()
    };
    let reference = run(Scheduler::Dfs, 1);
    assert!(
        reference.iter().all(Option::is_some),
        "every leaf gets a gradient"
    );
    for scheduler in Scheduler::ALL {
        for threads in THREADS {
            assert_eq!(
                run(scheduler, threads),
                reference,
                "{scheduler:?} at {threads} threads differs from Dfs"
            );
        }
    }
}

#[test]
fn seed_graph() {
    assert_bitwise_equal(|| {
        let t1 = Tensor::scalar(2.0).requires_grad();
        let t2 = Tensor::scalar(3.0).requires_grad();
        let t5 = Tensor::scalar(0.5).requires_grad();
        let l = ((&t1 + &t2) * (&t2 * &t5)).sin();
        (vec![t1, t2, t5], l)
    });
}

#[test]
fn w1_chain() {
    assert_bitwise_equal(|| {
        let x = Tensor::ones(&[1]).requires_grad();
        let mut y = x.clone();
        for i in 0..20_000 {
            y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
        }
        (vec![x], y.sum())
    });
}

#[test]
fn w2_wide_small() {
    assert_bitwise_equal(|| {
        let x = Tensor::randn(&[8, 32], 1);
        let mut leaves = Vec::new();
        let mut loss: Option<Tensor> = None;
        for b in 0..8 {
            let mut h = x.clone();
            for l in 0..3 {
                let w = (Tensor::randn(&[32, 32], 100 + b * 8 + l) * (1.0 / 32f32.sqrt()))
                    .requires_grad();
                h = h.matmul(&w).expect("matmul").tanh();
                leaves.push(w);
            }
            let s = h.sum();
            loss = Some(match loss {
                Some(acc) => &acc + &s,
                None => s,
            });
        }
        (leaves, loss.expect("branches"))
    });
}

#[test]
fn w3_fan_in_small() {
    assert_bitwise_equal(|| {
        let t2 = Tensor::randn(&[64], 3).requires_grad();
        let mut loss = Tensor::scalar(0.0);
        for k in 0..500 {
            loss = &loss + &(&t2 * (k as f32)).sin().sum();
        }
        (vec![t2], loss)
    });
}

/// Sums terms pairwise, level by level, as the W3 workload does (a tree of adds).
fn tree_sum(mut terms: Vec<Tensor>) -> Tensor {
    while terms.len() > 1 {
        terms = terms
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => a + b,
                [a] => a.clone(),
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    terms.pop().expect("one term")
}

/// W3's shape at a smaller size: 3,000 consumers of one `[64]` tensor, summed by a tree of
/// adds, so that many threads deliver into its node at once, into many blocks of its
/// summation tree.
#[test]
fn w3_fan_in_tree_of_adds() {
    const CONSUMERS: usize = 3_000;
    let build = || {
        let t2 = Tensor::randn(&[64], 5).requires_grad();
        let terms = (0..CONSUMERS)
            .map(|k| (&t2 * (k as f32 * 1e-3)).sin().sum())
            .collect();
        (vec![t2], tree_sum(terms))
    };
    assert_bitwise_equal(build);
    // d/dt Σ_k sin(a_k t) = Σ_k a_k cos(a_k t), with a_k = k / 1000.
    let (leaves, loss) = build();
    loss.backward().expect("backward");
    let t2 = &leaves[0];
    let grad = t2.grad().expect("a gradient").to_vec();
    for (g, t) in grad.iter().zip(t2.to_vec()) {
        let want: f64 = (0..CONSUMERS)
            .map(|k| {
                let a = k as f64 * 1e-3;
                a * (a * t as f64).cos()
            })
            .sum();
        assert!(
            (*g as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{g} vs {want}"
        );
    }
}

#[test]
fn fast_mode_agrees_within_tolerance() {
    let t2 = Tensor::randn(&[64], 3).requires_grad();
    let mut loss = Tensor::scalar(0.0);
    for k in 0..300 {
        loss = &loss + &(&t2 * (k as f32 * 0.01)).sin().sum();
    }
    let opts = BackwardOptions::new().retain_graph(true);
    loss.backward_with(&opts.clone().scheduler(Scheduler::Kahn))
        .unwrap();
    let exact = t2.grad().unwrap().to_vec();
    for threads in THREADS {
        t2.zero_grad();
        let fast = opts
            .clone()
            .threads(threads)
            .accumulation(Accumulation::Fast);
        loss.backward_with(&fast).unwrap();
        for (a, b) in t2.grad().unwrap().data().iter().zip(&exact) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

/// Products large enough that the kernels split into chunks (run on idle helpers while the
/// pass has free threads): a conv, a batched matmul and a GEMM per branch, and the forward
/// branches themselves on `parallel_map`.
#[test]
fn split_kernels() {
    assert_bitwise_equal(|| {
        let x = Tensor::randn(&[4, 8, 16, 16], 11);
        let leaves: Vec<Tensor> = (0..3)
            .map(|b| (Tensor::randn(&[8, 8, 3, 3], 20 + b) * 0.1).requires_grad())
            .collect();
        let outs = backflow::parallel_map(&leaves, |w| {
            // conv: 4·8·16·16 outputs × 8·9 taps × 2 ≈ 1.2 Mflop.
            let y = x.conv2d(w, None, 1, 1, 1).expect("conv").tanh();
            // batched: 32 products of [16, 16]·[16, 16] ≈ 0.26 Mflop.
            let y = y.reshape(&[32, 16, 16]).expect("reshape");
            let y = y
                .matmul(&y)
                .expect("bmm")
                .reshape(&[64, 128])
                .expect("reshape");
            // GEMM: [64, 128]·[128, 64] ≈ 1 Mflop.
            y.matmul(&y.transpose(0, 1).expect("t"))
                .expect("gemm")
                .sum()
        });
        let loss = &(&outs[0] + &outs[1]) + &outs[2];
        (leaves, loss)
    });
}
