//! Forward work on the executor's threads: the same bounded set of threads that runs backward
//! nodes and kernel chunks, so forward and backward never compete as two pools.

pub use backflow_engine::exec::{parallel_for, with_threads};

/// `f` applied to each item, concurrently on the calling thread and idle threads of the
/// executor (at most as many as [`with_threads`], or the backward pass this runs in, allows;
/// with none idle, in order on the calling thread); the results in item order. Each call
/// records gradients exactly when the caller does ([`no_grad`](crate::no_grad) carries over).
/// A panic in `f` is resumed here once every call has finished.
///
/// ```
/// use backflow::{parallel_map, Tensor};
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap().requires_grad();
/// let ys = parallel_map(&[1.0f32, 3.0], |&k| (&x * k).sum());
/// let total = &ys[0] + &ys[1];
/// total.backward().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, 4.0]);
/// ```
pub fn parallel_map<I: Sync, R: Send>(items: &[I], f: impl Fn(&I) -> R + Sync) -> Vec<R> {
    // Recording is a per-thread switch: carry the caller's mode to the threads that help.
    let record = crate::is_grad_enabled();
    backflow_engine::exec::map(items, |item| {
        if record {
            crate::enable_grad(|| f(item))
        } else {
            crate::no_grad(|| f(item))
        }
    })
}
