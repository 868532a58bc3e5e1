//! Profiling helper (not committed).
use backflow::{BackwardOptions, Scheduler};
fn main() {
    let w = backflow::workloads::wide(64, 8, 128, 32, 0).unwrap();
    let (leaves, loss) = (w.leaves, w.loss);
    let opts = BackwardOptions::new()
        .scheduler(Scheduler::Kahn)
        .threads(1)
        .retain_graph(true);
    for _ in 0..60 {
        loss.backward_with(&opts).unwrap();
        leaves.iter().for_each(|l| l.zero_grad());
    }
}
