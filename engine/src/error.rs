//! The error type of backflow: every message names the op and the shapes involved.

use thiserror::Error;

/// Everything that can go wrong when building or differentiating a graph.
///
/// New variants may be added in minor releases: match with a `_` arm.
///
/// ```
/// use backflow::{Error, Tensor};
/// let x = Tensor::<f32>::zeros(&[2, 3]);
/// match x.sum_axis(5) {
///     Err(Error::Axis { op, axis, shape }) => {
///         assert_eq!((op, axis, shape), ("sum_axis", 5, vec![2, 3]));
///     }
///     other => panic!("expected an axis error, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Error, PartialEq)]
#[non_exhaustive]
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
    /// An axis beyond the tensor's rank.
    #[error("{op}: axis {axis} is out of range for shape {shape:?} (rank {})", shape.len())]
    Axis {
        /// The op that rejected the axis.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// Shape of the tensor.
        shape: Vec<usize>,
    },
    /// Reading or writing a file failed.
    #[error("{op}: {}: {message}", path.display())]
    Io {
        /// The operation that touched the file.
        op: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What kind of failure the OS reported.
        kind: std::io::ErrorKind,
        /// The OS's message.
        message: String,
    },
    /// An argument the op cannot use (a length that does not match, a bad value).
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
    #[error(
        "backward of `{op}` (created at {location}) {}: {message}",
        if *panicked { "panicked" } else { "failed" }
    )]
    Backward {
        /// The op whose backward failed.
        op: String,
        /// Where the forward op was created.
        location: String,
        /// Whether it panicked (rather than returning an error).
        panicked: bool,
        /// The message or panic payload.
        message: String,
    },
}

/// Shorthand for results of backflow operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] from `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<std::path::PathBuf>, e: &std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
