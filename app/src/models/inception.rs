//! `inception`: two Inception blocks (Szegedy et al. 2015) over the 8×8 digit image. Each
//! block runs four branches on the same input, a 1×1 convolution; 1×1 then 3×3; 1×1 then
//! 5×5; and a 3×3 max pool then 1×1, every convolution followed by a ReLU and padded to
//! keep the 8×8 size, and concatenates them along the channels. A 2×2 max pool, then a
//! linear classifier over the flattened 4×4 maps.

use super::{Classifier, Recipe};
use backflow::nn::{
    prefixed, Branches, Conv2d, Linear, MaxPool2d, Merge, Module, Param, Relu, Sequential,
};
use backflow::{Result, Tensor};

/// The default training recipe: epochs, batch and Adam's learning rate.
pub const RECIPE: Recipe = Recipe {
    epochs: 15,
    batch: 64,
    lr: 2e-3,
};

/// A parameter name only this model has, to recognise its weights files.
pub const MARKER: &str = "block1.0.0.weight";

/// One block's channel counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockWidths {
    /// The 1×1 branch's outputs.
    pub c1: usize,
    /// The 3×3 branch's 1×1 reduction, then its outputs.
    pub c3: (usize, usize),
    /// The 5×5 branch's 1×1 reduction, then its outputs.
    pub c5: (usize, usize),
    /// The pool branch's outputs.
    pub pool: usize,
}

impl BlockWidths {
    /// Channels out of the block: the four branches' outputs together.
    pub fn outputs(&self) -> usize {
        self.c1 + self.c3.1 + self.c5.1 + self.pool
    }
}

/// The network's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct InceptionConfig {
    /// The first block (on the 1-channel image).
    pub block1: BlockWidths,
    /// The second block.
    pub block2: BlockWidths,
}

impl Default for InceptionConfig {
    /// Block 1: 8, 8→16, 4→8, 8 (40 channels); block 2: 16, 16→32, 8→16, 16 (80).
    fn default() -> Self {
        Self {
            block1: BlockWidths {
                c1: 8,
                c3: (8, 16),
                c5: (4, 8),
                pool: 8,
            },
            block2: BlockWidths {
                c1: 16,
                c3: (16, 32),
                c5: (8, 16),
                pool: 16,
            },
        }
    }
}

/// One Inception block from `inputs` channels: its four branches, concatenated along the
/// channels. Branch `i`'s layers are named `i.<layer>` (`1.2.weight`: the 3×3
/// convolution), as in `benches/peers/inception_digits.py`.
pub fn block(inputs: usize, w: &BlockWidths, seed: u64) -> Branches {
    let s = |i: u64| seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
    let conv =
        |from: usize, to: usize, k: usize, i: u64| Conv2d::new(from, to, k, s(i)).padding(k / 2);
    Branches::new(Merge::ConcatAxis(1))
        .push(Sequential::new().push(conv(inputs, w.c1, 1, 0)).push(Relu))
        .push(
            Sequential::new()
                .push(conv(inputs, w.c3.0, 1, 1))
                .push(Relu)
                .push(conv(w.c3.0, w.c3.1, 3, 2))
                .push(Relu),
        )
        .push(
            Sequential::new()
                .push(conv(inputs, w.c5.0, 1, 3))
                .push(Relu)
                .push(conv(w.c5.0, w.c5.1, 5, 4))
                .push(Relu),
        )
        .push(
            Sequential::new()
                .push(MaxPool2d::new(3, 1, 1))
                .push(conv(inputs, w.pool, 1, 5))
                .push(Relu),
        )
}

/// The Inception classifier.
pub struct Inception {
    block1: Branches,
    block2: Branches,
    pool: MaxPool2d,
    head: Linear,
}

impl Inception {
    /// The model at `config`'s sizes, weights drawn from `seed`.
    pub fn new(config: &InceptionConfig, seed: u64) -> Self {
        let s = |i: u64| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i);
        let channels = config.block2.outputs();
        Self {
            block1: block(1, &config.block1, s(1)),
            block2: block(config.block1.outputs(), &config.block2, s(2)),
            pool: MaxPool2d::new(2, 2, 0),
            head: Linear::new(channels * 16, 10, s(3)),
        }
    }

    /// The first block, for drawing its graph.
    pub fn first_block(&self) -> &Branches {
        &self.block1
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let batch = x.shape()[0];
        let image = x.reshape(&[batch, 1, 8, 8])?;
        let h = self.block2.forward(&self.block1.forward(&image)?)?;
        let pooled = self.pool.forward(&h)?;
        let flat = pooled.reshape(&[batch, pooled.numel() / batch.max(1)])?;
        self.head.forward(&flat)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut params = prefixed("block1", self.block1.named_parameters());
        params.extend(prefixed("block2", self.block2.named_parameters()));
        params.extend(prefixed("head", self.head.named_parameters()));
        params
    }
}

impl Classifier for Inception {}
