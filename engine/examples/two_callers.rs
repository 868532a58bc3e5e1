//! Two-caller latency: how long caller B's backward passes take while caller A's pass is
//! stuck in one long branch, against B's passes alone.
//!
//! A runs a 200-node pass at `threads(T)` whose custom op blocks until B is done (or 3 s
//! pass); meanwhile B runs `REPS` passes of an unrelated 120-node graph at `threads(T)`.
//! Prints B's total and median pass time, alone and with A running, and the ratios.
//!
//! ```text
//! cargo run --release -p backflow-engine --example two_callers [-- THREADS]
//! ```

use backflow_engine::{BackwardCtx, BackwardOptions, CustomOp, Result, Tensor};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// B's passes per measurement.
const REPS: usize = 50;

/// About `nodes` nodes in eight branches of `sin(x·c)` steps from one leaf, summed.
fn graph(nodes: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>) {
    let x = Tensor::<f64>::randn(&[64], seed).requires_grad();
    let steps = (nodes / 16).max(1);
    let mut loss = Tensor::scalar(0.0);
    for _ in 0..8 {
        let mut h = x.clone();
        for _ in 0..steps {
            h = (&h * 1.01).sin();
        }
        loss = &loss + &h.sum();
    }
    (x, loss)
}

/// y = x; its backward signals that it started, then waits for B (at most 3 s).
struct Long {
    started: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl CustomOp<f64> for Long {
    fn name(&self) -> &'static str {
        "long"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        _inputs: &[Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let _ = self.started.lock().unwrap().send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(3));
        Ok(vec![Some(grad.clone())])
    }
}

/// B's `REPS` passes: their total and median time.
fn b_passes(opts: &BackwardOptions) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..REPS)
        .map(|i| {
            let (_, loss) = graph(120, i as u64);
            let t = Instant::now();
            loss.backward_with(opts).expect("B's backward");
            t.elapsed()
        })
        .collect();
    let total = times.iter().sum();
    times.sort();
    (total, times[REPS / 2])
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("THREADS"))
        .unwrap_or(2);
    let opts = BackwardOptions::new().threads(threads);
    b_passes(&opts); // warm up
    let (alone_total, alone_median) = b_passes(&opts);

    let (started_tx, started_rx) = channel();
    let (release_tx, release_rx) = channel();
    let op = Long {
        started: Mutex::new(started_tx),
        release: Mutex::new(release_rx),
    };
    let a_opts = opts.clone();
    let a = std::thread::spawn(move || {
        let (x, loss) = graph(200, 99);
        let long = Tensor::apply_op(op, &[&x]).expect("apply");
        let loss = &loss + &long.sum();
        loss.backward_with(&a_opts).expect("A's backward");
    });
    started_rx.recv().expect("A's long branch started");
    let (with_total, with_median) = b_passes(&opts);
    let _ = release_tx.send(());
    a.join().expect("A");

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("threads({threads}), B = {REPS} passes of a 120-node graph");
    println!(
        "B alone:        total {:9.3} ms, median {:.3} ms",
        ms(alone_total),
        ms(alone_median)
    );
    println!(
        "B with A stuck: total {:9.3} ms, median {:.3} ms",
        ms(with_total),
        ms(with_median)
    );
    println!(
        "ratio (with A / alone): total {:.2}x, median {:.2}x",
        ms(with_total) / ms(alone_total),
        ms(with_median) / ms(alone_median)
    );
}
