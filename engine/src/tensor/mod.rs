//! `Tensor`: a cheap-to-clone handle to immutable data, plus the graph node that produced it.

mod backward;
mod checkpoint;
mod checkpoint_scope;
mod custom_op;
mod export;
pub(crate) mod grad_mode;
mod gradcheck;
mod gradgradcheck;
mod leaf_grad;
pub(crate) mod node;
mod observe;
mod options;
mod task;
mod weak;

pub use backward::{backward, grad};
pub use checkpoint::checkpoint;
pub use custom_op::CustomOp;
pub use export::GraphExport;
pub use gradcheck::{gradcheck, numeric_grads, GradcheckTolerance};
pub use gradgradcheck::gradgradcheck;
pub(crate) use node::Node;
pub use node::{BackwardCtx, GradFn};
pub use observe::BackwardStats;
pub use options::BackwardOptions;
pub use weak::WeakTensor;

use crate::error::{Error, Result};
use crate::sync::{Arc, Mutex, Ordering};
use backflow_kernels::{checked_numel, numel, Element};
use checkpoint_scope::Intercepted;
use node::{InputEdge, InputEdges, NodeKind};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use smallvec::SmallVec;
use std::panic::Location;

/// An n-dimensional array of `T` (f32 by default) that records the ops applied to it.
///
/// Cloning is cheap (a reference count). Data is immutable: ops return new tensors.
///
/// ```
/// use backflow::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap().requires_grad();
/// let y = (&x * &x).sum();          // y = Σ x²
/// y.backward().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]); // dy/dx = 2x
/// ```
pub struct Tensor<T: Element = f32> {
    inner: Arc<Inner<T>>,
}

/// Dimensions, inline up to rank 4 (no allocation for the common shapes).
pub(crate) type Shape = SmallVec<[usize; 4]>;

struct Inner<T: Element> {
    data: Arc<Vec<T>>,
    shape: Shape,
    /// The leaf or op node of this tensor; `None` when it requires no gradient.
    node: Option<Arc<Node<T>>>,
}

impl<T: Element> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = &self.inner.data;
        let shown: Vec<T> = data.iter().take(8).copied().collect();
        write!(f, "Tensor<{}>{:?} {:?}", T::NAME, self.shape(), shown)?;
        if data.len() > 8 {
            write!(f, "…")?;
        }
        if let Some(node) = &self.inner.node {
            write!(f, " ({})", node.op)?;
        }
        Ok(())
    }
}

/// The number of elements of `shape`, checked for `op`: an `Error::Invalid` naming `op` and
/// the shape when the count overflows `usize` or its buffer of `T` would exceed `isize::MAX`
/// bytes (the most any allocation can hold).
pub(crate) fn checked_len<T: Element>(op: &'static str, shape: &[usize]) -> Result<usize> {
    checked_numel(shape)
        .filter(|&n| {
            n.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|bytes| bytes <= isize::MAX as usize)
        })
        .ok_or_else(|| Error::Invalid {
            op,
            message: format!(
                "shape {shape:?} has too many elements: their count or their size in bytes \
                 ({}) overflows what one buffer can hold",
                T::NAME
            ),
        })
}

/// The `Error::Invalid` for a buffer of `len` elements of `T` that the allocator refused,
/// naming `op`, the shape and the bytes asked for.
fn alloc_error<T: Element>(op: &'static str, shape: &[usize], len: usize) -> Error {
    Error::Invalid {
        op,
        message: format!(
            "cannot allocate {} bytes ({len} elements of {}) for shape {shape:?}",
            len.saturating_mul(std::mem::size_of::<T>()),
            T::NAME
        ),
    }
}

/// A buffer of `shape`'s element count filled with `value`, allocated fallibly: an
/// `Error::Invalid` naming `op`, the shape and the bytes when the count overflows or the
/// allocator refuses the memory, where an infallible allocation would abort the process.
pub(crate) fn try_filled<T: Element>(
    op: &'static str,
    shape: &[usize],
    value: T,
) -> Result<Vec<T>> {
    let len = checked_len::<T>(op, shape)?;
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| alloc_error::<T>(op, shape, len))?;
    data.resize(len, value);
    Ok(data)
}

/// Checks, before a kernel that allocates infallibly runs, that `len` elements of `T` (what
/// it will hold at once for an output of `shape`) can be allocated: reserves them and gives
/// them back. An `Error::Invalid` names `op`, the shape and the bytes when the allocator
/// refuses, so that a huge but valid argument fails the op instead of aborting the process.
pub(crate) fn check_alloc<T: Element>(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    let fits = len
        .checked_mul(std::mem::size_of::<T>())
        .is_some_and(|bytes| bytes <= isize::MAX as usize);
    if !fits || Vec::<T>::new().try_reserve_exact(len).is_err() {
        return Err(alloc_error::<T>(op, shape, len));
    }
    Ok(())
}

impl<T: Element> Tensor<T> {
    /// A tensor from raw parts, without a node. Panics if `data` does not fill `shape`.
    pub(crate) fn raw(data: Vec<T>, shape: Vec<usize>) -> Self {
        Self::raw_with(data, &shape)
    }

    /// A tensor from raw data and a borrowed shape, without a node.
    pub(crate) fn raw_with(data: Vec<T>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            numel(shape),
            "tensor data does not fill shape {shape:?}"
        );
        Self {
            inner: Arc::new(Inner {
                data: Arc::new(data),
                shape: Shape::from_slice(shape),
                node: None,
            }),
        }
    }

    /// A tensor of `shape` holding `data` in row-major order. An `Error::Invalid` names the
    /// shape when `data` does not fill it exactly (or its element count overflows `usize`).
    ///
    /// ```
    /// use backflow::Tensor;
    /// assert!(Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1]).is_ok());
    /// assert!(Tensor::from_vec(vec![7.0f32], &[274177, 67280421310721]).is_err());
    /// ```
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let len = checked_len::<T>("from_vec", shape)?;
        if data.len() != len {
            return Err(Error::Invalid {
                op: "from_vec",
                message: format!(
                    "{} values cannot fill shape {shape:?} ({len} elements)",
                    data.len(),
                ),
            });
        }
        Ok(Self::raw_with(data, shape))
    }

    /// A zero-dimensional tensor holding `value`.
    pub fn scalar(value: T) -> Self {
        Self::raw(vec![value], vec![])
    }

    /// A tensor of `shape` filled with `value`, or an `Error::Invalid` naming `full` and the
    /// shape when its element count (or size in bytes) overflows, or when the allocator
    /// refuses the memory (the error then gives the bytes asked for).
    ///
    /// ```
    /// use backflow::Tensor;
    /// assert_eq!(Tensor::try_full(&[2], 7.0f32).unwrap().to_vec(), vec![7.0, 7.0]);
    /// let e = Tensor::try_full(&[1 << 32, 1 << 32], 0.0f32).unwrap_err();
    /// assert!(e.to_string().contains("full: shape [4294967296, 4294967296]"));
    /// ```
    pub fn try_full(shape: &[usize], value: T) -> Result<Self> {
        Self::try_full_for("full", shape, value)
    }

    fn try_full_for(op: &'static str, shape: &[usize], value: T) -> Result<Self> {
        Ok(Self::raw_with(try_filled(op, shape, value)?, shape))
    }

    /// A tensor of zeros, or an `Error::Invalid` naming `zeros` and the shape when its
    /// element count (or size in bytes) overflows, or when the allocator refuses the memory.
    ///
    /// ```
    /// use backflow::Tensor;
    /// assert!(Tensor::<f32>::try_zeros(&[usize::MAX, 2]).is_err());
    /// ```
    pub fn try_zeros(shape: &[usize]) -> Result<Self> {
        Self::try_full_for("zeros", shape, T::zero())
    }

    /// A tensor of `shape` filled with `value`.
    ///
    /// # Panics
    ///
    /// If the element count of `shape` (or its size in bytes) overflows, with a message
    /// naming `full` and the shape; [`try_full`](Self::try_full) returns that as an error.
    #[track_caller]
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::try_full(shape, value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    ///
    /// If the element count of `shape` (or its size in bytes) overflows, with a message
    /// naming `zeros` and the shape; [`try_zeros`](Self::try_zeros) returns that as an error.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let z = Tensor::<f32>::zeros(&[2, 0]);
    /// assert_eq!(z.numel(), 0);
    /// ```
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::try_zeros(shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tensor of ones.
    ///
    /// # Panics
    ///
    /// As [`zeros`](Self::zeros), naming `ones`.
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::try_full_for("ones", shape, T::one()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Standard normal samples from a generator seeded with `seed` (same seed, same values).
    ///
    /// # Panics
    ///
    /// As [`zeros`](Self::zeros), naming `randn`.
    #[track_caller]
    pub fn randn(shape: &[usize], seed: u64) -> Self {
        let len = checked_len::<T>("randn", shape).unwrap_or_else(|e| panic!("{e}"));
        let mut rng = StdRng::seed_from_u64(seed);
        let data = (0..len)
            .map(|_| {
                let v: f64 = StandardNormal.sample(&mut rng);
                T::from_f64(v)
            })
            .collect();
        Self::raw_with(data, shape)
    }

    /// This tensor's values as a new leaf that requires a gradient: backward passes sum
    /// into its [`grad`](Self::grad).
    ///
    /// A tensor that already requires a gradient is returned unchanged: an op's result stays
    /// in the graph (gradients flow through it to the leaves it came from, as in PyTorch),
    /// and a leaf keeps its gradient. To start a new leaf from a computed value, use
    /// [`detach`](Self::detach) first.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::scalar(2.0).requires_grad();
    /// let h = (&x * 3.0).requires_grad(); // still computed from x
    /// (&h * &h).backward().unwrap();       // d(9x²)/dx = 18x = 36
    /// assert_eq!(x.grad().unwrap().item(), 36.0);
    /// let fresh = h.detach().requires_grad(); // a new leaf
    /// assert!(fresh.is_leaf());
    /// ```
    #[track_caller]
    pub fn requires_grad(self) -> Self {
        if self.inner.node.is_some() {
            return self;
        }
        let node = Node::new(
            "leaf",
            NodeKind::Leaf {
                grad: Mutex::new(None),
            },
            Location::caller(),
        );
        Self {
            inner: Arc::new(Inner {
                data: Arc::clone(&self.inner.data),
                shape: self.inner.shape.clone(),
                node: Some(Arc::new(node)),
            }),
        }
    }

    /// Whether gradients flow to or through this tensor.
    pub fn needs_grad(&self) -> bool {
        self.inner.node.is_some()
    }

    /// Whether this tensor is a leaf of the graph (created, not computed by a recorded op).
    pub fn is_leaf(&self) -> bool {
        self.inner.node.as_ref().is_none_or(|n| n.is_leaf())
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.inner.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.inner.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.inner.data.len()
    }

    /// The values, row-major.
    pub fn data(&self) -> &[T] {
        &self.inner.data
    }

    /// The buffer behind this tensor, to share with a view of it.
    pub(crate) fn shared_data(&self) -> Arc<Vec<T>> {
        Arc::clone(&self.inner.data)
    }

    /// The values as a new vector, row-major.
    pub fn to_vec(&self) -> Vec<T> {
        self.inner.data.to_vec()
    }

    /// The single value of a one-element tensor. Panics, naming the shape, otherwise.
    pub fn item(&self) -> T {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} has {} elements, not 1",
            self.shape(),
            self.numel()
        );
        self.inner.data[0]
    }

    /// The same values, cut off from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                data: Arc::clone(&self.inner.data),
                shape: self.inner.shape.clone(),
                node: None,
            }),
        }
    }

    /// This leaf with new values: the result keeps the leaf's autograd identity (its
    /// accumulated gradient, hooks and grad-ready callbacks) and holds `data`, of the same
    /// shape. This is how an optimiser updates a parameter: graphs already built keep the old
    /// values they saved, and the hooks a user registered stay registered. A tensor that
    /// requires no gradient just gets the new values.
    ///
    /// Errs if `data` does not fill the shape, or if this tensor is the output of an op (its
    /// values are defined by its inputs).
    ///
    /// ```
    /// use backflow::Tensor;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let w = Tensor::<f32>::ones(&[2]).requires_grad();
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let seen = Arc::clone(&calls);
    /// w.on_grad_ready(move |_| {
    ///     seen.fetch_add(1, Ordering::Relaxed);
    /// });
    /// let w2 = w.with_values(vec![5.0, 6.0]).unwrap();
    /// (&w2 * 2.0).sum().backward().unwrap();
    /// assert_eq!(calls.load(Ordering::Relaxed), 1); // the callback survived
    /// assert_eq!(w.grad().unwrap().to_vec(), vec![2.0, 2.0]); // one gradient, shared
    /// ```
    pub fn with_values(&self, data: Vec<T>) -> Result<Tensor<T>> {
        if data.len() != self.numel() {
            return Err(Error::Invalid {
                op: "with_values",
                message: format!(
                    "{} values cannot fill shape {:?} ({} elements)",
                    data.len(),
                    self.shape(),
                    self.numel()
                ),
            });
        }
        if !self.is_leaf() {
            return Err(Error::Invalid {
                op: "with_values",
                message: format!(
                    "the tensor of shape {:?} is the output of `{}`, not a leaf",
                    self.shape(),
                    self.inner.node.as_ref().map_or("?", |n| n.op)
                ),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                data: Arc::new(data),
                shape: self.inner.shape.clone(),
                node: self.inner.node.clone(),
            }),
        })
    }

    /// The gradient accumulated into this leaf by backward passes, if any.
    pub fn grad(&self) -> Option<Tensor<T>> {
        match &self.inner.node.as_deref()?.kind {
            NodeKind::Leaf { grad } => grad.lock().clone(),
            NodeKind::Op { .. } => None,
        }
    }

    /// Clears this leaf's accumulated gradient.
    pub fn zero_grad(&self) {
        if let Some(NodeKind::Leaf { grad }) = self.inner.node.as_deref().map(|n| &n.kind) {
            *grad.lock() = None;
        }
    }

    /// Registers a hook on the gradient flowing into this tensor during backward. The hook
    /// sees the summed gradient before it is used, and may return a replacement of the same
    /// shape. Hooks run in registration order, on whichever worker runs the node. No effect
    /// on a tensor that requires no gradient.
    ///
    /// Hooks run with graph recording ([`is_grad_enabled`](crate::is_grad_enabled)) on
    /// exactly when the pass has `create_graph`, as backward functions do: under every
    /// scheduler and thread count, and in a pass nested inside another pass's hook, whatever
    /// the mode of the thread that runs them.
    ///
    /// The hook is owned by this tensor's graph node: a hook that captures this tensor (or
    /// one computed from it) forms a reference cycle that is never freed. Capture a
    /// [`WeakTensor`] from [`downgrade`](Self::downgrade) instead.
    ///
    /// A replacement of another shape fails the pass with an `Error::Backward` naming the
    /// tensor's op, where it was created, and both shapes (and, as every failed pass, leaves
    /// the leaves' gradients as they were).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 3]).requires_grad();
    /// x.register_hook(|g| Some(g * 2.0));
    /// x.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0; 6]);
    /// x.register_hook(|_| Some(Tensor::zeros(&[7])));
    /// let e = x.sum().backward().unwrap_err();
    /// assert!(e.to_string().contains("shape [7] for the tensor's shape [2, 3]"));
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0; 6]); // unchanged
    /// ```
    pub fn register_hook(
        &self,
        hook: impl Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync + 'static,
    ) {
        if let Some(node) = &self.inner.node {
            node.with_extras(|e| e.hooks.push(Arc::new(hook)));
            // Release: pairs with the Acquire in the backward task that checks for hooks.
            node.hooked.store(true, Ordering::Release);
        }
    }

    /// Registers a callback on a leaf, called once per backward pass as soon as this leaf's
    /// gradient from that pass is final, while the rest of the pass may still run (to
    /// overlap communication with backward). It receives this pass's gradient.
    ///
    /// The leaf's [`grad`](Self::grad) is written only when the whole pass has succeeded,
    /// after every callback of the pass: a callback that reads `grad()` sees the value from
    /// before the pass, and a pass that fails after a callback fired leaves `grad()` as it
    /// was (the callback has still seen the gradient).
    ///
    /// Callbacks run with graph recording ([`is_grad_enabled`](crate::is_grad_enabled)) on
    /// exactly when the pass has `create_graph`, like [`register_hook`](Self::register_hook)'s
    /// hooks: the same under every scheduler and thread count, also in a pass nested inside
    /// another pass's hook.
    ///
    /// The callback is owned by this leaf's node: one that captures this tensor forms a
    /// reference cycle that is never freed. To reach the tensor from its callback, capture
    /// a [`WeakTensor`] from [`downgrade`](Self::downgrade), as `probe` below.
    ///
    /// ```
    /// use backflow::Tensor;
    /// use std::sync::{Arc, Mutex};
    /// let x = Tensor::<f64>::scalar(3.0).requires_grad();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let probe = x.downgrade(); // not `x.clone()`: that would keep `x` alive forever
    /// x.on_grad_ready(move |g| {
    ///     let before = probe.upgrade().and_then(|x| x.grad());
    ///     log.lock().unwrap().push((g.item(), before.is_some()));
    /// });
    /// (&x * &x).backward().unwrap();
    /// assert_eq!(*seen.lock().unwrap(), vec![(6.0, false)]); // 2x, before the commit
    /// assert_eq!(x.grad().unwrap().item(), 6.0);
    /// ```
    pub fn on_grad_ready(&self, hook: impl Fn(&Tensor<T>) + Send + Sync + 'static) {
        if let Some(node) = &self.inner.node {
            node.with_extras(|e| e.ready_hooks.push(Arc::new(hook)));
            // Release: pairs with the Acquire in the backward task that checks for hooks.
            node.hooked.store(true, Ordering::Release);
        }
    }

    /// The node that produced this tensor (or its leaf node), if it requires grad.
    pub(crate) fn node(&self) -> Option<&Arc<Node<T>>> {
        self.inner.node.as_ref()
    }

    /// A handle on the node that produced this tensor (or on its leaf), if it requires
    /// grad: see [`GradFn`].
    pub fn grad_fn(&self) -> Option<GradFn<T>> {
        self.inner.node.clone().map(GradFn)
    }

    /// Records an op: `data` of `shape` computed from `inputs`; `backward` maps the output's
    /// gradient to one optional gradient per input. A node is recorded only when recording
    /// is on ([`no_grad`](crate::no_grad)) and some input requires grad. This is also how
    /// custom ops join the graph.
    ///
    /// ```
    /// use backflow::Tensor;
    /// // A custom op: y = 3x, with dy/dx = 3.
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]).unwrap().requires_grad();
    /// let data = x.data().iter().map(|v| 3.0 * v).collect();
    /// let y = Tensor::from_op("triple", data, x.shape().to_vec(), &[&x], |gy, _ctx| {
    ///     Ok(vec![Some(gy * 3.0)])
    /// });
    /// y.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 3.0]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `data` does not hold exactly the elements of `shape`, with a message naming `op`,
    /// the data length and the shape; [`try_from_op`](Self::try_from_op) returns that as an
    /// error instead.
    #[track_caller]
    pub fn from_op(
        op: &'static str,
        data: Vec<T>,
        shape: Vec<usize>,
        inputs: &[&Tensor<T>],
        backward: impl Fn(&Tensor<T>, &BackwardCtx) -> Result<Vec<Option<Tensor<T>>>>
            + Send
            + Sync
            + 'static,
    ) -> Tensor<T> {
        Self::record(op, Arc::new(data), shape, inputs, backward)
    }

    /// [`from_op`](Self::from_op) that returns an `Error::Invalid` naming `op`, the data
    /// length and the shape when `data` does not fill `shape`, instead of panicking.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2]).requires_grad();
    /// let e = Tensor::try_from_op("bad", vec![1.0], vec![2], &[&x], |gy, _| Ok(vec![Some(gy.clone())]))
    ///     .unwrap_err();
    /// assert!(e.to_string().starts_with("bad: 1 values"));
    /// ```
    #[track_caller]
    pub fn try_from_op(
        op: &'static str,
        data: Vec<T>,
        shape: Vec<usize>,
        inputs: &[&Tensor<T>],
        backward: impl Fn(&Tensor<T>, &BackwardCtx) -> Result<Vec<Option<Tensor<T>>>>
            + Send
            + Sync
            + 'static,
    ) -> Result<Tensor<T>> {
        check_fills(op, data.len(), &shape)?;
        Ok(Self::record(op, Arc::new(data), shape, inputs, backward))
    }

    /// [`from_op`](Self::from_op) over data already shared with the backward closure.
    #[track_caller]
    pub(crate) fn record(
        op: &'static str,
        data: Arc<Vec<T>>,
        shape: Vec<usize>,
        inputs: &[&Tensor<T>],
        backward: impl Fn(&Tensor<T>, &BackwardCtx) -> Result<Vec<Option<Tensor<T>>>>
            + Send
            + Sync
            + 'static,
    ) -> Tensor<T> {
        Self::record_owned(op, data, shape, inputs, move |gy, ctx, out| {
            out.extend(backward(&gy, ctx)?);
            Ok(())
        })
    }

    /// Records an op whose backward takes the output's gradient by value and pushes one
    /// entry per input onto the executor's buffer (see [`BackwardFn`](node::BackwardFn)):
    /// the form of the built-in ops, which reuse a gradient's buffer when they can.
    #[track_caller]
    pub(crate) fn record_owned(
        op: &'static str,
        data: Arc<Vec<T>>,
        shape: Vec<usize>,
        inputs: &[&Tensor<T>],
        backward: impl Fn(Tensor<T>, &BackwardCtx, &mut Vec<Option<Tensor<T>>>) -> Result<()>
            + Send
            + Sync
            + 'static,
    ) -> Tensor<T> {
        if let Err(e) = check_fills(op, data.len(), &shape) {
            panic!("{e}");
        }
        // The kernels split over the executor's threads from the first op on.
        crate::exec::install_runner();
        let mut out = Self {
            inner: Arc::new(Inner {
                data,
                shape: Shape::from_vec(shape),
                node: None,
            }),
        };
        if !grad_mode::is_grad_enabled() || !inputs.iter().any(|t| t.needs_grad()) {
            return out;
        }
        // A checkpointed segment running on this thread may record nothing, or edges to
        // leaves standing in for the tensors it uses from outside.
        let in_segment = checkpoint_scope::active();
        let edges: InputEdges<T> = match in_segment.then(|| checkpoint_scope::intercept(inputs)) {
            Some(Intercepted::Suppress) => return out,
            Some(Intercepted::Edges(edges)) => edges,
            Some(Intercepted::No) | None => inputs
                .iter()
                .enumerate()
                .filter_map(|(index, t)| {
                    t.inner.node.as_ref().map(|node| InputEdge {
                        index: index as u32,
                        shape: t.inner.shape.clone(),
                        node: Arc::clone(node),
                    })
                })
                .collect(),
        };
        let node = Node::new(
            op,
            NodeKind::Op {
                inputs: edges,
                arity: inputs.len(),
                backward: Mutex::new(Some(Arc::new(backward))),
            },
            Location::caller(),
        );
        let node = Arc::new(node);
        if in_segment {
            checkpoint_scope::created(&node);
        }
        Arc::get_mut(&mut out.inner).expect("fresh tensor").node = Some(node);
        out
    }

    /// This tensor's buffer to overwrite in place, when this handle is the only holder of
    /// both the tensor and its data and the tensor records nothing (a gradient outside
    /// `create_graph`); `None` otherwise, and the caller allocates a new buffer.
    pub(crate) fn unique_data_mut(&mut self) -> Option<&mut [T]> {
        let inner = Arc::get_mut(&mut self.inner)?;
        if inner.node.is_some() {
            return None;
        }
        Arc::get_mut(&mut inner.data).map(|v| v.as_mut_slice())
    }

    /// `f` applied to every element: in place when [`unique_data_mut`](Self::unique_data_mut)
    /// allows, else into a new buffer of the same shape. Never recorded.
    pub(crate) fn map_reusing(mut self, f: impl Fn(T) -> T) -> Tensor<T> {
        if let Some(data) = self.unique_data_mut() {
            for v in data.iter_mut() {
                *v = f(*v);
            }
            return self;
        }
        let data = self.data().iter().map(|&v| f(v)).collect();
        Tensor::raw_with(data, self.shape())
    }

    /// This gradient with `shape` (same element count): in place when this handle holds the
    /// tensor alone, else a new handle sharing the data. Never recorded.
    pub(crate) fn reshaped_reusing(mut self, shape: &[usize]) -> Tensor<T> {
        debug_assert_eq!(numel(shape), self.numel());
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            if inner.node.is_none() {
                inner.shape = Shape::from_slice(shape);
                return self;
            }
        }
        Tensor {
            inner: Arc::new(Inner {
                data: Arc::clone(&self.inner.data),
                shape: Shape::from_slice(shape),
                node: None,
            }),
        }
    }

    /// `f(self[i], other[i])` for every element of two tensors of one shape: in place in
    /// `self`'s buffer when allowed, else into a new buffer. Never recorded.
    pub(crate) fn zip_reusing(mut self, other: &[T], f: impl Fn(T, T) -> T) -> Tensor<T> {
        debug_assert_eq!(self.numel(), other.len());
        if let Some(data) = self.unique_data_mut() {
            for (v, &o) in data.iter_mut().zip(other) {
                *v = f(*v, o);
            }
            return self;
        }
        let data = self
            .data()
            .iter()
            .zip(other)
            .map(|(&v, &o)| f(v, o))
            .collect();
        Tensor::raw_with(data, self.shape())
    }
}

/// An `Error::Invalid` naming `op` unless `len` values fill `shape` exactly.
fn check_fills(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    if checked_numel(shape) == Some(len) {
        return Ok(());
    }
    Err(Error::Invalid {
        op,
        message: format!(
            "{len} values do not fill the output shape {shape:?} ({} elements)",
            checked_numel(shape).map_or_else(|| "overflowing".to_string(), |n| n.to_string())
        ),
    })
}
