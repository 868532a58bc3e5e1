//! Graph nodes: what an op records so that its backward can run.
//!
//! A node is either a leaf (a tensor created with `requires_grad()`, which accumulates its
//! `.grad()`) or an op, holding its backward function (and through it the tensors it saved)
//! and one edge per input that requires a gradient. Dropping a node never recurses: nodes
//! released while another is being dropped are queued and dropped in a loop, so a graph a
//! million nodes deep drops on a small stack.

use super::Tensor;
use crate::error::Result;
use crate::sync::{Arc, AtomicBool, Mutex};
use backflow_kernels::Element;
use smallvec::SmallVec;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};

/// What a backward function knows of the pass it runs in.
///
/// ```
/// use backflow::{BackwardCtx, BackwardOptions, CustomOp, Result, Tensor};
/// /// y = a·b, returning a gradient only for the inputs that need one.
/// struct Mul;
/// impl CustomOp<f32> for Mul {
///     fn name(&self) -> &'static str {
///         "my_mul"
///     }
///     fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
///         inputs[0].try_mul(inputs[1])
///     }
///     fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor, ctx: &BackwardCtx)
///         -> Result<Vec<Option<Tensor>>> {
///         assert_eq!(ctx.inputs(), 2);
///         Ok(vec![ctx.needs(0).then(|| g * &inputs[1]), ctx.needs(1).then(|| g * &inputs[0])])
///     }
/// }
/// let a = Tensor::scalar(3.0).requires_grad();
/// let b = Tensor::scalar(4.0); // needs no gradient
/// Tensor::apply_op(Mul, &[&a, &b]).unwrap().backward().unwrap();
/// assert_eq!(a.grad().unwrap().item(), 4.0);
/// ```
#[derive(Clone, Debug)]
pub struct BackwardCtx {
    /// Whether the backward pass is itself recorded (gradients of gradients).
    pub create_graph: bool,
    /// `needs[i]`: whether input `i` of the op wants a gradient.
    pub(crate) needs: SmallVec<[bool; 4]>,
}

impl BackwardCtx {
    /// Whether input `input` of the op wants a gradient (false past the last input).
    pub fn needs(&self, input: usize) -> bool {
        self.needs.get(input).copied().unwrap_or(false)
    }

    /// The op's number of inputs.
    pub fn inputs(&self) -> usize {
        self.needs.len()
    }

    /// The context of an op of `arity` inputs with `edges` (built on the stack for each run,
    /// rather than stored in every node).
    pub(crate) fn new<T: Element>(
        create_graph: bool,
        arity: usize,
        edges: &[InputEdge<T>],
    ) -> BackwardCtx {
        let mut needs = if arity <= 4 {
            // No loop for the common arities: a fixed buffer, cut to length.
            SmallVec::from_buf_and_len([false; 4], arity)
        } else {
            SmallVec::from_elem(false, arity)
        };
        for e in edges {
            needs[e.index as usize] = true;
        }
        BackwardCtx {
            create_graph,
            needs,
        }
    }
}

/// An op's backward as the executor runs it: from the gradient of its output, taken by
/// value so that the backward may write into its buffer when it holds the only reference,
/// it pushes the gradients of its inputs onto `out` (one entry per input, `None` where the
/// input needs none). `out` is the executor's reusable buffer, so no list is allocated.
pub(crate) type BackwardFn<T> =
    dyn Fn(Tensor<T>, &BackwardCtx, &mut Vec<Option<Tensor<T>>>) -> Result<()> + Send + Sync;

/// A hook on the gradient flowing into a tensor; it may replace it.
pub(crate) type GradHook<T> = dyn Fn(&Tensor<T>) -> Option<Tensor<T>> + Send + Sync;

/// A callback told that a leaf's gradient of this pass is final.
pub(crate) type ReadyHook<T> = dyn Fn(&Tensor<T>) + Send + Sync;

/// A node's gradient hooks and ready callbacks, as [`Node::hooks`] hands them out.
pub(crate) type HookLists<T> = (Vec<Arc<GradHook<T>>>, Vec<Arc<ReadyHook<T>>>);

/// An edge from an op to one of its inputs that requires a gradient.
pub(crate) struct InputEdge<T: Element> {
    /// Index of the input among the op's inputs.
    pub(crate) index: u32,
    /// Shape of that input, to check what backward returns (inline up to rank 4).
    pub(crate) shape: super::Shape,
    /// The input's node.
    pub(crate) node: Arc<Node<T>>,
}

/// An op's edges, inline for the common single-input op (no allocation of their own).
pub(crate) type InputEdges<T> = SmallVec<[InputEdge<T>; 1]>;

/// What kind of node this is.
pub(crate) enum NodeKind<T: Element> {
    /// A tensor created with `requires_grad()`; sums the gradients of every backward.
    Leaf {
        /// The accumulated gradient.
        grad: Mutex<Option<Tensor<T>>>,
    },
    /// The output of an op.
    Op {
        /// Edges to the inputs that require a gradient, in input order.
        inputs: InputEdges<T>,
        /// Number of inputs of the op, with or without edges.
        arity: usize,
        /// The backward function; `None` once freed by a backward without `retain_graph`.
        backward: Mutex<Option<Arc<BackwardFn<T>>>>,
    },
}

/// A node of the recorded graph.
pub(crate) struct Node<T: Element> {
    /// The op's name (`"leaf"` for leaves).
    pub(crate) op: &'static str,
    pub(crate) kind: NodeKind<T>,
    /// Where the forward op was called.
    pub(crate) location: &'static Location<'static>,
    /// Whether any hook was ever registered (spares the lock below on the hot path).
    pub(crate) hooked: AtomicBool,
    /// Hooks, callbacks and a cached plan, allocated only once one is registered or stored:
    /// most nodes have none, and pay one pointer for the possibility.
    pub(crate) extras: Mutex<Option<Box<Extras<T>>>>,
}

/// What few nodes carry: hooks, callbacks and, on a root differentiated with
/// `retain_graph`, its plan for the next pass.
pub(crate) struct Extras<T: Element> {
    /// Hooks on the gradient flowing into this tensor, in registration order.
    pub(crate) hooks: Vec<Arc<GradHook<T>>>,
    /// Leaves only: called once per pass when the gradient is final.
    pub(crate) ready_hooks: Vec<Arc<ReadyHook<T>>>,
    /// The plan of a backward pass from this node alone, built once and reused by later
    /// passes over the same (immutable) graph.
    pub(crate) plan: Option<Arc<CachedPlan<T>>>,
}

impl<T: Element> Default for Extras<T> {
    fn default() -> Self {
        Self {
            hooks: Vec::new(),
            ready_hooks: Vec::new(),
            plan: None,
        }
    }
}

/// A single root's plan and the nodes of its dense indices `1..`; index 0 is the root,
/// which holds this, so it is not stored here (that would be a reference cycle).
pub(crate) struct CachedPlan<T: Element> {
    pub(crate) plan: Arc<crate::exec::Plan>,
    pub(crate) below: Vec<Arc<Node<T>>>,
}

impl<T: Element> Node<T> {
    pub(crate) fn new(
        op: &'static str,
        kind: NodeKind<T>,
        location: &'static Location<'static>,
    ) -> Self {
        Self {
            op,
            kind,
            location,
            hooked: AtomicBool::new(false),
            extras: Mutex::new(None),
        }
    }

    /// Runs `f` on this node's extras, allocating them first if needed.
    pub(crate) fn with_extras<R>(&self, f: impl FnOnce(&mut Extras<T>) -> R) -> R {
        f(self.extras.lock().get_or_insert_with(Default::default))
    }

    /// The hooks and the ready callbacks registered so far (clones of their handles, so
    /// that they run without the lock held).
    pub(crate) fn hooks(&self) -> HookLists<T> {
        match self.extras.lock().as_ref() {
            Some(e) => (e.hooks.clone(), e.ready_hooks.clone()),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// The op's name.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        matches!(self.kind, NodeKind::Leaf { .. })
    }

    /// Where the forward op was created.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Nodes this node's backward sends gradients to, in edge order.
    pub(crate) fn successors(&self) -> impl Iterator<Item = &Arc<Node<T>>> {
        let inputs: &[InputEdge<T>] = match &self.kind {
            NodeKind::Op { inputs, .. } => inputs,
            NodeKind::Leaf { .. } => &[],
        };
        inputs.iter().map(|e| &e.node)
    }
}

/// A handle on the graph node behind a tensor that requires grad (its leaf, or the op
/// that produced it), from [`Tensor::grad_fn`]: the op's name, where the forward created
/// it, and identity (two handles are equal when they name the same node). It keeps the
/// node, and so the tensors its backward saved, alive.
///
/// ```
/// use backflow::Tensor;
/// let x = Tensor::<f32>::ones(&[2]).requires_grad();
/// let y = x.sin();
/// let f = y.grad_fn().unwrap();
/// assert_eq!(f.op(), "sin");
/// assert!(!f.is_leaf() && x.grad_fn().unwrap().is_leaf());
/// assert_eq!(f, y.clone().grad_fn().unwrap());
/// assert!(x.detach().grad_fn().is_none());
/// ```
#[derive(Clone)]
pub struct GradFn<T: Element = f32>(pub(crate) Arc<Node<T>>);

impl<T: Element> GradFn<T> {
    /// The op's name (`"leaf"` for a leaf).
    pub fn op(&self) -> &'static str {
        self.0.op
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.0.is_leaf()
    }

    /// Where the forward op (or `requires_grad`) was called.
    pub fn location(&self) -> &'static Location<'static> {
        self.0.location
    }
}

impl<T: Element> PartialEq for GradFn<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: Element> Eq for GradFn<T> {}

impl<T: Element> std::fmt::Debug for GradFn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GradFn({} at {})", self.0.op, self.0.location)
    }
}

thread_local! {
    /// Parts of dropped nodes waiting to be dropped by the outermost `Node::drop`.
    static DROP_QUEUE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

impl<T: Element> Drop for Node<T> {
    fn drop(&mut self) {
        let parts: Box<dyn Any> = match &mut self.kind {
            NodeKind::Op {
                inputs, backward, ..
            } => Box::new((
                std::mem::take(inputs),
                backward.lock().take(),
                self.extras.lock().take(),
            )),
            NodeKind::Leaf { .. } => return,
        };
        let queued = DROP_QUEUE.try_with(|q| q.borrow_mut().push(parts)).is_ok();
        if !queued || DRAINING.with(|d| d.replace(true)) {
            return;
        }
        // Outermost drop: dropping a part may drop further nodes, which queue their parts
        // instead of recursing. A part whose drop panics (a value captured by a backward
        // function, with a panicking `Drop`) must not stop the loop: the queue would keep
        // what follows, and `DRAINING` would stay set, so that every node dropped on this
        // thread afterwards would be queued and never freed. The first panic is resumed
        // once the queue is empty.
        let mut panic = None;
        loop {
            let next = DROP_QUEUE.with(|q| q.borrow_mut().pop());
            match next {
                Some(part) => {
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(part))) {
                        panic.get_or_insert(payload);
                    }
                }
                None => break,
            }
        }
        DRAINING.with(|d| d.set(false));
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
    }
}
