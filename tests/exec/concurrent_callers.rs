//! Several user threads call `backward` at once on graphs that share leaves; every
//! contribution lands in the leaves' `.grad()`.

use backflow::{BackwardOptions, Scheduler, Tensor};
use std::thread;

#[test]
fn concurrent_backward_calls_sum_into_shared_leaves() {
    let w = Tensor::<f64>::randn(&[32], 11).requires_grad();
    let callers = 6;
    let passes = 10;
    // Loss of caller c: Σ sin(w · (c+1)); its gradient is (c+1)·cos(w·(c+1)).
    thread::scope(|s| {
        for c in 0..callers {
            let w = w.clone();
            s.spawn(move || {
                for p in 0..passes {
                    let scheduler = Scheduler::ALL[(c + p) % 3];
                    let loss = (&w * (c as f64 + 1.0)).sin().sum();
                    let opts = BackwardOptions::new()
                        .scheduler(scheduler)
                        .threads(1 + c % 3);
                    loss.backward_with(&opts).expect("backward");
                }
            });
        }
    });
    let got = w.grad().expect("gradient").to_vec();
    for (i, &wi) in w.data().iter().enumerate() {
        let expected: f64 = (0..callers)
            .map(|c| (c as f64 + 1.0) * (wi * (c as f64 + 1.0)).cos() * passes as f64)
            .sum();
        assert!((got[i] - expected).abs() < 1e-9, "{} vs {expected}", got[i]);
    }
}
