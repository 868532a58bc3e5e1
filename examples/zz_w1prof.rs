//! Profiling helper (not committed).
use backflow::{BackwardOptions, Scheduler, Tensor};
fn main() {
    let s: Scheduler = std::env::args()
        .nth(1)
        .unwrap_or("kahn".into())
        .parse()
        .unwrap();
    let reps: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(5);
    let x = Tensor::ones(&[1]).requires_grad();
    let mut y = x.clone();
    for i in 0..100_000 {
        y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
    }
    let l = y.sum();
    let opts = BackwardOptions::new()
        .scheduler(s)
        .threads(1)
        .retain_graph(true);
    for _ in 0..reps {
        l.backward_with(&opts).unwrap();
        x.zero_grad();
    }
    std::mem::forget((l, y, x));
}
