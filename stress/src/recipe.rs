//! Seeded random recipes: the structure of a tensor DAG, separate from its tensors.
//!
//! A [`Recipe`] lists leaves (by shape) and ops (by kind and input ids); it is plain data,
//! so the same seed always gives the same graph, proptest can shrink it, and a failure can
//! print it. [`Recipe::generate`] lays ops out in layers of `width`: each input is a hub
//! (with probability `hub_share`), a leaf (`leaf_share`), or an op of the previous `window`
//! layers. Every op that nothing consumes becomes a root, so every op is in the backward
//! plan. Shapes stay in the family "rank ≤ 2, each dimension 1 or `dim`", in which any two
//! shapes broadcast; [`super::build`] coerces where an op needs more (matmul, concat).

pub use super::op::{FaultKind, LeafShape, Op, OpKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Relative weights of the op categories.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpMix {
    /// Affine, negation, division by a number.
    pub scalar: u32,
    /// sin, cos, tanh, sigmoid, exp.
    pub unary: u32,
    /// `+ - * /` with broadcasting.
    pub binary: u32,
    /// Matrix products.
    pub matmul: u32,
    /// sum, sum_axis, mean.
    pub reduce: u32,
    /// reshape, transpose, concat, softmax, log_softmax.
    pub layout: u32,
}

impl Default for OpMix {
    fn default() -> Self {
        Self {
            scalar: 2,
            unary: 3,
            binary: 5,
            matmul: 1,
            reduce: 1,
            layout: 2,
        }
    }
}

/// The knobs of the generator.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphSpec {
    /// Number of ops (coercions add a few more tensor nodes).
    pub nodes: usize,
    /// Ops per layer; depth is `nodes / width`, rounded up.
    pub width: usize,
    /// Number of leaves (tensors that require grad).
    pub leaves: usize,
    /// The `d` of the shape family.
    pub dim: usize,
    /// Number of hub tensors (the first leaves and the first ops).
    pub hubs: usize,
    /// Probability that an input is a hub.
    pub hub_share: f64,
    /// Probability that an input is a leaf, shared across branches.
    pub leaf_share: f64,
    /// Local inputs come from this many previous layers.
    pub window: usize,
    /// Op category weights.
    pub mix: OpMix,
}

impl Default for GraphSpec {
    fn default() -> Self {
        Self {
            nodes: 48,
            width: 6,
            leaves: 6,
            dim: 3,
            hubs: 1,
            hub_share: 0.15,
            leaf_share: 0.15,
            window: 2,
            mix: OpMix::default(),
        }
    }
}

/// The structure of a random tensor DAG.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The `d` of the shape family.
    pub dim: usize,
    /// Leaf shapes; leaf `j` is node `j`.
    pub leaves: Vec<LeafShape>,
    /// Ops in creation order; op `i` is node `leaves.len() + i`.
    pub ops: Vec<Op>,
    /// Nodes seeded with a `grad_output`, repeats allowed.
    pub roots: Vec<u32>,
    /// Ops whose output passes through a fault op (empty for a clean graph).
    pub faults: Vec<(u32, FaultKind)>,
    /// Seeds the leaf values and `grad_outputs`.
    pub value_seed: u64,
}

impl Recipe {
    /// The recipe for `seed`: the same seed and spec always give the same recipe.
    pub fn generate(seed: u64, spec: &GraphSpec) -> Recipe {
        let mut rng = StdRng::seed_from_u64(seed);
        let leaves: Vec<LeafShape> = (0..spec.leaves.max(1))
            .map(|_| LeafShape::ALL[rng.random_range(0..5)])
            .collect();
        let n_leaves = leaves.len() as u32;
        let width = spec.width.max(1);
        let mut ops: Vec<Op> = Vec::with_capacity(spec.nodes);
        for i in 0..spec.nodes {
            let layer = i / width;
            let kind = random_kind(&mut rng, &spec.mix);
            let inputs = (0..kind.arity())
                .map(|_| {
                    let r: f64 = rng.random();
                    // Hubs: the first `hubs` ops (once they exist) and the first `hubs` leaves.
                    let hub_ops = spec.hubs.min(i);
                    let hubs = hub_ops + spec.hubs.min(leaves.len());
                    if r < spec.hub_share && hubs > 0 {
                        let h = rng.random_range(0..hubs);
                        if h < hub_ops {
                            n_leaves + h as u32
                        } else {
                            (h - hub_ops) as u32
                        }
                    } else if r < spec.hub_share + spec.leaf_share || layer == 0 {
                        rng.random_range(0..n_leaves)
                    } else {
                        let lo = layer.saturating_sub(spec.window.max(1)) * width;
                        let hi = layer * width;
                        n_leaves + rng.random_range(lo..hi) as u32
                    }
                })
                .collect();
            ops.push(Op { kind, inputs });
        }
        let mut recipe = Recipe {
            dim: spec.dim.max(1),
            leaves,
            ops,
            roots: vec![],
            faults: vec![],
            value_seed: seed,
        };
        recipe.roots = recipe.sinks();
        if recipe.roots.len() > 1 && rng.random_bool(0.2) {
            // A repeated root: two seeds for one node.
            let again = recipe.roots[rng.random_range(0..recipe.roots.len())];
            recipe.roots.push(again);
        }
        recipe
    }

    /// The ops nothing consumes (or, with no ops, every leaf): the natural roots.
    pub fn sinks(&self) -> Vec<u32> {
        let n_leaves = self.leaves.len();
        let mut used = vec![false; n_leaves + self.ops.len()];
        for op in &self.ops {
            for &i in &op.inputs {
                used[i as usize] = true;
            }
        }
        let first = if self.ops.is_empty() { 0 } else { n_leaves };
        (first..used.len())
            .filter(|&i| !used[i])
            .map(|i| i as u32)
            .collect()
    }

    /// This recipe with `count` faults of random kinds at random ops, chosen by `seed`.
    pub fn with_faults(mut self, seed: u64, count: usize) -> Recipe {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17_fa17);
        self.faults.clear();
        if self.ops.is_empty() {
            return self;
        }
        for _ in 0..count.max(1) {
            let op = rng.random_range(0..self.ops.len()) as u32;
            let kind = if rng.random_bool(0.5) {
                FaultKind::Panic
            } else {
                FaultKind::Error
            };
            if !self.faults.iter().any(|f| f.0 == op) {
                self.faults.push((op, kind));
            }
        }
        self
    }

    /// Number of layers implied by the ops' inputs (longest path from a leaf, in ops).
    pub fn depth(&self) -> usize {
        let n_leaves = self.leaves.len();
        let mut depth = vec![0usize; n_leaves + self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            depth[n_leaves + i] = 1 + op
                .inputs
                .iter()
                .map(|&j| depth[j as usize])
                .max()
                .unwrap_or(0);
        }
        depth.into_iter().max().unwrap_or(0)
    }

    /// The largest number of consumers of one node (roots count as consumers).
    pub fn max_fan_in(&self) -> usize {
        let mut count = vec![0usize; self.leaves.len() + self.ops.len()];
        for &i in self.ops.iter().flat_map(|op| &op.inputs).chain(&self.roots) {
            count[i as usize] += 1;
        }
        count.into_iter().max().unwrap_or(0)
    }
}

fn random_kind(rng: &mut StdRng, mix: &OpMix) -> OpKind {
    use OpKind::*;
    let weights = [
        mix.scalar, mix.unary, mix.binary, mix.matmul, mix.reduce, mix.layout,
    ];
    let total: u32 = weights.iter().sum::<u32>().max(1);
    let mut r = rng.random_range(0..total);
    let mut category = 0;
    for (c, &w) in weights.iter().enumerate() {
        if r < w {
            category = c;
            break;
        }
        r -= w;
    }
    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    match category {
        0 => match rng.random_range(0..3) {
            0 => Affine(
                sign * rng.random_range(0.5..1.5),
                rng.random_range(-1.0..1.0),
            ),
            1 => Neg,
            _ => DivScalar(sign * rng.random_range(0.5..2.0)),
        },
        1 => [Sin, Cos, Tanh, Sigmoid, Exp][rng.random_range(0..5)],
        2 => [Add, Sub, Mul, Div][rng.random_range(0..4)],
        3 => Matmul,
        4 => [Sum, SumAxis, Mean][rng.random_range(0..3)],
        _ => [Reshape, Transpose, Concat, Softmax, LogSoftmax][rng.random_range(0..5)],
    }
}
