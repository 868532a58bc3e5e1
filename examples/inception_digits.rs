//! An Inception network on the digits, written as a user would: two blocks of four
//! parallel branches over the 8×8 image (1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max pool → 1×1),
//! concatenated along the channels by `Branches` with `Merge::ConcatAxis(1)`, then a 2×2
//! max pool and a linear head. The backward pass runs the branches in parallel.
//! `backflow train --model inception` trains the same shape with its own seeds.
//!
//! Run: `cargo run --release --example inception_digits`. Expected output (identical on
//! every run and at any thread count; the last digits may differ on a CPU with other
//! SIMD kernels):
//!
//! ```text
//! epoch   5: mean loss 0.1432
//! epoch  10: mean loss 0.0391
//! epoch  15: mean loss 0.0086
//! test accuracy 98.89%
//! ```

use backflow::nn::{
    accuracy, cross_entropy, Adam, Branches, Conv2d, Linear, MaxPool2d, Merge, Module, Optimizer,
    Relu, Sequential,
};
use backflow::{no_grad, BackwardOptions, Result, Tensor};
use backflow_app::data::digits;

/// A `k`×`k` convolution padded to keep the size, then a ReLU.
fn conv(from: usize, to: usize, k: usize, seed: u64) -> Sequential {
    Sequential::new()
        .push(Conv2d::new(from, to, k, seed).padding(k / 2))
        .push(Relu)
}

/// Four branches, concatenated along the channels: `c1 + c3 + c5 + pool` channels out.
fn block(inputs: usize, [c1, r3, c3, r5, c5, pool]: [usize; 6], seed: u64) -> Branches {
    Branches::new(Merge::ConcatAxis(1))
        .push(conv(inputs, c1, 1, seed))
        .push(conv(inputs, r3, 1, seed + 1).push(conv(r3, c3, 3, seed + 2)))
        .push(conv(inputs, r5, 1, seed + 3).push(conv(r5, c5, 5, seed + 4)))
        .push(
            Sequential::new()
                .push(MaxPool2d::new(3, 1, 1))
                .push(conv(inputs, pool, 1, seed + 5)),
        )
}

fn main() -> Result<()> {
    let model = Sequential::new()
        .push_named("block1", block(1, [8, 8, 16, 4, 8, 8], 0))
        .push_named("block2", block(40, [16, 16, 32, 8, 16, 16], 10))
        .push_named("pool", MaxPool2d::new(2, 2, 0));
    let head = Linear::new(80 * 4 * 4, 10, 20);
    let forward = |x: &Tensor| -> Result<Tensor> {
        let b = x.shape()[0];
        let maps = model.forward(&x.reshape(&[b, 1, 8, 8])?)?;
        head.forward(&maps.reshape(&[b, 80 * 4 * 4])?)
    };

    let (train, test) = digits()?.split(0.8, 0);
    let mut params = model.parameters();
    params.extend(head.parameters());
    let mut opt = Adam::new(params, 2e-3);
    let opts = BackwardOptions::new(); // parallel scheduler, every core
    for epoch in 1..=15 {
        let (mut total, mut count) = (0.0, 0);
        for batch in train.batches(64, epoch) {
            let loss = cross_entropy(&forward(&batch.x)?, &batch.y)?;
            loss.backward_with(&opts)?;
            opt.step()?;
            total += loss.item();
            count += 1;
        }
        if epoch % 5 == 0 {
            println!("epoch {epoch:>3}: mean loss {:.4}", total / count as f32);
        }
    }
    let all = test.batch();
    let logits = no_grad(|| forward(&all.x))?;
    println!("test accuracy {:.2}%", accuracy(&logits, &all.y) * 100.0);
    Ok(())
}
