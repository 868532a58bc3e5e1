//! The error type of backflow: every message names the op and the shapes involved.

use thiserror::Error;

/// Everything that can go wrong when building or differentiating a graph.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum Error {
    /// Operand shapes that the op cannot combine.
    #[error("{op}: incompatible shapes {lhs:?} and {rhs:?}: {reason}")]
    Shape {
        /// The op that rejected its inputs.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Vec<usize>,
        /// Shape of the second operand (or the requested shape).
        rhs: Vec<usize>,
        /// What the op needed.
        reason: String,
    },
    /// An argument the op cannot use (an axis out of range, a length that does not match).
    #[error("{op}: {message}")]
    Invalid {
        /// The op that rejected its argument.
        op: &'static str,
        /// What was wrong, with the shapes.
        message: String,
    },
    /// `backward` from a root with several elements and no gradient given for it.
    #[error(
        "backward: the root has shape {shape:?} ({numel} elements); backward() needs a single \
         element: reduce it first (e.g. .sum()), or pass its gradient with backflow::grad"
    )]
    NonScalarRoot {
        /// Shape of the root.
        shape: Vec<usize>,
        /// Its number of elements.
        numel: usize,
    },
    /// `backward` on a tensor that does not require a gradient.
    #[error(
        "backward: the root of shape {shape:?} does not require grad (no input was created \
         with requires_grad(), or it was built under no_grad or detached)"
    )]
    NoGraph {
        /// Shape of the root.
        shape: Vec<usize>,
    },
    /// A second backward through a graph whose saved tensors were freed by the first.
    #[error(
        "backward of `{op}`: its saved tensors were freed by an earlier backward; pass \
         retain_graph(true) to the first backward to go through the graph again"
    )]
    GraphFreed {
        /// The op whose saved tensors are gone.
        op: String,
    },
    /// A backward function failed or panicked.
    #[error("backward of `{op}` (created at {location}) {how}: {message}")]
    Backward {
        /// The op whose backward failed.
        op: String,
        /// Where the forward op was created.
        location: String,
        /// "failed" or "panicked".
        how: &'static str,
        /// The message or panic payload.
        message: String,
    },
}

/// Shorthand for results of backflow operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
