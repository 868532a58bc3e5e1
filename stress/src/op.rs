//! The vocabulary of recipes: leaf shapes, op kinds, ops, and fault kinds.
//!
//! Shapes stay in the family "rank ≤ 2, each dimension 1 or `d`", in which any two shapes
//! broadcast against each other; [`super::build`] says which tensor ops each kind records.

/// A shape of the broadcast family, for `dim = d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafShape {
    /// `[]`
    Scalar,
    /// `[d]`
    Vector,
    /// `[1, d]`
    Row,
    /// `[d, 1]`
    Column,
    /// `[d, d]`
    Square,
}

impl LeafShape {
    /// Every shape of the family.
    pub const ALL: [LeafShape; 5] = [
        Self::Scalar,
        Self::Vector,
        Self::Row,
        Self::Column,
        Self::Square,
    ];

    /// The dimensions for `dim`.
    pub fn dims(self, dim: usize) -> Vec<usize> {
        match self {
            Self::Scalar => vec![],
            Self::Vector => vec![dim],
            Self::Row => vec![1, dim],
            Self::Column => vec![dim, 1],
            Self::Square => vec![dim, dim],
        }
    }
}

/// What an op computes; see [`super::build`] for the exact tensor ops each one records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpKind {
    /// `x * c + d` (scalar op).
    Affine(f64, f64),
    /// `-x`.
    Neg,
    /// `x / c` (scalar op).
    DivScalar(f64),
    /// `sin x`.
    Sin,
    /// `cos x`.
    Cos,
    /// `tanh x`.
    Tanh,
    /// `sigmoid x`.
    Sigmoid,
    /// `exp x` (of `tanh x` when `x` may be large).
    Exp,
    /// `a + b`, broadcasting.
    Add,
    /// `a - b`, broadcasting.
    Sub,
    /// `a * b`, broadcasting.
    Mul,
    /// `a / (tanh b + 2)`, broadcasting: the denominator stays in `[1, 3]`.
    Div,
    /// `a · b`, both broadcast to `[d, d]` first.
    Matmul,
    /// `Σ x`.
    Sum,
    /// `Σ` along the last axis.
    SumAxis,
    /// `mean x`.
    Mean,
    /// A reshape within the family.
    Reshape,
    /// `xᵀ` for matrices, else a reshape.
    Transpose,
    /// `concat([a, b], 0)` summed back along axis 0.
    Concat,
    /// `softmax` along the last axis.
    Softmax,
    /// `log_softmax` along the last axis.
    LogSoftmax,
}

impl OpKind {
    /// Number of inputs.
    pub fn arity(self) -> usize {
        match self {
            Self::Add | Self::Sub | Self::Mul | Self::Div | Self::Matmul | Self::Concat => 2,
            _ => 1,
        }
    }
}

/// One op: its kind and input node ids (leaves are `0..leaves`, op `i` is `leaves + i`).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// What it computes.
    pub kind: OpKind,
    /// Input node ids, all smaller than this op's own id.
    pub inputs: Vec<u32>,
}

/// How an injected fault fails its backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The backward panics.
    Panic,
    /// The backward returns `Err`.
    Error,
}
