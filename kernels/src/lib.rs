//! Forward and backward numeric kernels of backflow over plain, contiguous, row-major slices.
//!
//! Each op's backward sits right beside its forward, with its derivation in one comment.

mod element;

pub use element::Element;
