//! A routed mixture of experts on the digits, written as a user would: 8 expert MLPs,
//! each row sent by a linear gate to its 2 best experts, the training loss the
//! cross-entropy plus 0.01 × the load-balancing loss. The graph is different for every
//! batch (each expert sees only its rows), and the backward pass runs the experts in
//! parallel. `backflow train --model moe` trains the same model.
//!
//! Run: `cargo run --release --example moe_digits`. Expected output (identical on every
//! run and at any thread count; the last digits may differ on a CPU with other SIMD
//! kernels):
//!
//! ```text
//! epoch  10: mean loss 0.0422, expert load [192, 545, 391, 208, 253, 97, 118, 1070]
//! epoch  20: mean loss 0.0183, expert load [281, 405, 364, 93, 292, 208, 296, 935]
//! epoch  30: mean loss 0.0186, expert load [204, 401, 370, 55, 301, 326, 271, 946]
//! test accuracy 96.94%
//! ```

use backflow::nn::{
    accuracy, cross_entropy, Adam, Linear, MoE, Module, Optimizer, Sequential, Tanh,
};
use backflow::{no_grad, BackwardOptions};
use backflow_app::data::digits;

fn main() -> backflow::Result<()> {
    let experts = (0..8u64).map(|e| {
        Sequential::new()
            .push(Linear::new(64, 64, 2 * e + 1))
            .push(Tanh)
            .push(Linear::new(64, 10, 2 * e + 2))
    });
    let model = MoE::new(Linear::new(64, 8, 0), 2, experts);

    let (train, test) = digits()?.split(0.8, 0);
    let mut opt = Adam::new(model.parameters(), 1e-2);
    let opts = BackwardOptions::new(); // parallel scheduler, every core
    for epoch in 1..=30 {
        let (mut total, mut count, mut load) = (0.0, 0, vec![0; 8]);
        for batch in train.batches(64, epoch) {
            let routed = model.route(&batch.x)?;
            let loss =
                cross_entropy(&routed.output, &batch.y)?.try_add(&(routed.aux_loss * 0.01))?;
            loss.backward_with(&opts)?;
            opt.step()?;
            total += loss.item();
            count += 1;
            load.iter_mut().zip(&routed.load).for_each(|(l, n)| *l += n);
        }
        if epoch % 10 == 0 {
            println!(
                "epoch {epoch:>3}: mean loss {:.4}, expert load {load:?}",
                total / count as f32
            );
        }
    }
    let all = test.batch();
    let logits = no_grad(|| model.forward(&all.x))?;
    println!("test accuracy {:.2}%", accuracy(&logits, &all.y) * 100.0);
    Ok(())
}
