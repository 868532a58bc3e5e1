//! backflow: automatic differentiation with a multi-threaded dataflow backward pass.
