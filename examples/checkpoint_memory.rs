//! Gradient checkpointing on W2 (64 branches × 8 layers of `tanh(h·W)`, `x` [batch, 128],
//! batch 32 as in W2 unless a second argument says otherwise):
//! peak memory and time of one forward + backward pass, with each branch recorded as usual
//! or run under `backflow::checkpoint` (its 8 layers recomputed during backward).
//!
//! Run each mode in a fresh process, since the peak (VmHWM) only grows:
//!
//! ```text
//! cargo run --release --example checkpoint_memory -- plain [BATCH]
//! cargo run --release --example checkpoint_memory -- checkpoint [BATCH]
//! ```
//!
//! Prints the peak resident memory added by the pass (Linux; 0 elsewhere), its wall time,
//! and a checksum of the gradients, which is the same in both modes.

use backflow::{checkpoint, BackwardOptions, Result, Tensor};
use std::time::Instant;

const BRANCHES: usize = 64;
const LAYERS: usize = 8;

/// Peak resident set size so far, in KiB (`VmHWM` in /proc/self/status).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One branch: `LAYERS` times `h = tanh(h·W)`, summed.
fn branch(x: &Tensor, ws: &[Tensor]) -> Result<Tensor> {
    let mut h = x.clone();
    for w in ws {
        h = h.matmul(w)?.tanh();
    }
    Ok(h.sum())
}

fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "plain".into());
    let use_checkpoint = match mode.as_str() {
        "plain" => false,
        "checkpoint" => true,
        other => {
            eprintln!("checkpoint_memory: unknown mode `{other}`: expected plain or checkpoint");
            std::process::exit(2);
        }
    };
    let batch: usize = match std::env::args().nth(2).map(|b| b.parse()) {
        None => 32,
        Some(Ok(b)) if b > 0 => b,
        Some(_) => {
            eprintln!("checkpoint_memory: the batch must be a positive whole number");
            std::process::exit(2);
        }
    };
    let x = Tensor::<f32>::randn(&[batch, 128], 0);
    let scale = 1.0 / 128f32.sqrt();
    let ws: Vec<Vec<Tensor>> = (0..BRANCHES)
        .map(|b| {
            (0..LAYERS)
                .map(|l| {
                    (&Tensor::randn(&[128, 128], (b * LAYERS + l) as u64 + 1) * scale)
                        .requires_grad()
                })
                .collect()
        })
        .collect();
    let before = peak_kib();
    let start = Instant::now();
    let mut ends = Vec::with_capacity(BRANCHES);
    for branch_ws in &ws {
        let end = if use_checkpoint {
            let inputs: Vec<&Tensor> = std::iter::once(&x).chain(branch_ws).collect();
            checkpoint(|t| branch(&t[0], &t[1..]), &inputs)?
        } else {
            branch(&x, branch_ws)?
        };
        ends.push(end);
    }
    let loss = ends.iter().skip(1).fold(ends[0].clone(), |a, b| &a + b);
    loss.backward_with(&BackwardOptions::new())?;
    let elapsed = start.elapsed();
    let added = peak_kib().saturating_sub(before);
    let checksum: f64 = ws
        .iter()
        .flatten()
        .map(|w| {
            w.grad()
                .map_or(0.0, |g| g.data().iter().map(|&v| v as f64).sum::<f64>())
        })
        .sum();
    println!(
        "{mode:>10} (batch {batch}): peak memory added {:.1} MiB, forward + backward {:.1} ms, gradient checksum {checksum:.6e}",
        added as f64 / 1024.0,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
