//! W4: the 1,000,000-node chain runs backward under every scheduler with bitwise-identical
//! gradients, and the graph drops on a thread with a small stack (no recursion), where
//! candle overflows between 30,000 and 60,000 nodes.

use backflow::{BackwardOptions, Scheduler, Tensor};
use std::thread;

const NODES: usize = 1_000_000;

/// `y*1.0001` at odd steps, `y+0.5` at even steps, `L = y.sum()`.
fn chain(x: &Tensor<f64>, n: usize) -> Tensor<f64> {
    let mut y = x.clone();
    for i in 0..n {
        y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
    }
    y.sum()
}

#[test]
fn the_million_node_chain_agrees_bitwise_under_every_scheduler() {
    let x = Tensor::<f64>::ones(&[1]).requires_grad();
    let loss = chain(&x, NODES);
    let mut bits = Vec::new();
    for scheduler in Scheduler::ALL {
        let opts = BackwardOptions::new()
            .scheduler(scheduler)
            .threads(2)
            .retain_graph(true);
        loss.backward_with(&opts).expect("backward");
        bits.push(x.grad().expect("gradient").item().to_bits());
        x.zero_grad();
    }
    // dL/dx = 1.0001^(number of multiplications)
    let expected = 1.0001f64.powi((NODES / 2) as i32);
    assert!((f64::from_bits(bits[0]) / expected - 1.0).abs() < 1e-9);
    assert!(bits.iter().all(|&b| b == bits[0]), "{bits:?}");
}

#[test]
fn the_million_node_chain_drops_on_a_small_stack() {
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let x = Tensor::<f64>::ones(&[1]).requires_grad();
            let loss = chain(&x, NODES);
            loss.backward().expect("backward");
            drop(loss);
            let loss = chain(&x, NODES);
            drop(loss); // never differentiated: saved tensors still held
            let loss = chain(&x, NODES);
            let retained = BackwardOptions::new().retain_graph(true);
            loss.backward_with(&retained).expect("backward");
            loss.backward_with(&retained)
                .expect("backward, plan reused");
            drop(loss); // the root's cached plan holds every node of the chain
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}
