//! The scope of a checkpointed segment while its function runs on this thread: it sees every
//! op that would record a node, to find the tensors the segment uses from outside (captured
//! by its closure: leaves, or results of ops recorded before it) and, when the segment is
//! recomputed, to record fresh leaves in their place, so that the recomputed graph ends at
//! the segment's boundary.

use super::node::{InputEdge, InputEdges, Node};
use super::Tensor;
use crate::sync::Arc;
use backflow_kernels::Element;
use rustc_hash::{FxHashMap, FxHashSet};
use std::any::Any;
use std::cell::{Cell, RefCell};

thread_local! {
    /// The segments being run on this thread, innermost last (each a `Scope<T>`).
    static SCOPES: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    /// Whether `SCOPES` holds any: the one check ops pay outside a segment.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// The identity of a graph node (its address, stable while the node lives).
pub(super) fn key<T: Element>(node: &Arc<Node<T>>) -> usize {
    Arc::as_ptr(node) as usize
}

/// What a segment's scope does with the ops of its function.
pub(super) enum Scope<T: Element> {
    /// The segment's first call: ops record nothing; each tensor requiring grad that an op
    /// would have recorded an edge to comes from outside (the segment's own inputs are
    /// passed detached), and is listed once, in order of first use.
    Discover {
        found: Vec<Tensor<T>>,
        seen: FxHashSet<usize>,
    },
    /// A recomputation: ops record as usual, except that an edge to one of the tensors the
    /// first call found goes to a fresh leaf standing in for it (made at its first use).
    Recompute {
        stand_ins: FxHashMap<usize, Option<Tensor<T>>>,
        /// The nodes recorded in this scope.
        created: FxHashSet<usize>,
    },
}

impl<T: Element> Scope<T> {
    /// The scope of a segment's first call.
    pub(super) fn discover() -> Self {
        Scope::Discover {
            found: Vec::new(),
            seen: FxHashSet::default(),
        }
    }

    /// The scope of a recomputation that stands leaves in for the nodes of `outside`.
    pub(super) fn recompute(outside: impl IntoIterator<Item = usize>) -> Self {
        Scope::Recompute {
            stand_ins: outside.into_iter().map(|k| (k, None)).collect(),
            created: FxHashSet::default(),
        }
    }

    /// Notes that the segment uses `t` (a tensor requiring grad, from outside, when its key
    /// is not yet known); for the first call only.
    pub(super) fn note_use(&mut self, t: &Tensor<T>) {
        if let (Scope::Discover { found, seen }, Some(node)) = (self, t.node()) {
            if seen.insert(key(node)) {
                found.push(t.clone());
            }
        }
    }
}

/// Runs `f` with `scope` innermost on this thread and returns its result with the scope
/// (popped also when `f` panics).
pub(super) fn run<T: Element, R>(scope: Scope<T>, f: impl FnOnce() -> R) -> (R, Scope<T>) {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            let _ = SCOPES.try_with(|s| {
                let mut s = s.borrow_mut();
                s.pop();
                ACTIVE.with(|a| a.set(!s.is_empty()));
            });
        }
    }
    SCOPES.with(|s| s.borrow_mut().push(Box::new(scope)));
    ACTIVE.with(|a| a.set(true));
    let pop = Pop;
    let result = f();
    let scope = SCOPES
        .with(|s| s.borrow_mut().pop())
        .expect("the segment's scope");
    std::mem::forget(pop);
    ACTIVE.with(|a| a.set(SCOPES.with(|s| !s.borrow().is_empty())));
    let scope = *scope
        .downcast::<Scope<T>>()
        .expect("a scope of this element type");
    (result, scope)
}

/// Whether a segment is running on this thread.
pub(super) fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// What the innermost segment of element type `T` makes of an op about to be recorded.
pub(super) enum Intercepted<T: Element> {
    /// No segment of this element type runs here: record as usual.
    No,
    /// A segment's first call: record nothing.
    Suppress,
    /// A recomputation: record these edges (with stand-ins for outside tensors).
    Edges(InputEdges<T>),
}

/// Runs `f` on the innermost scope of element type `T`, if any.
fn with_innermost<T: Element, R>(f: impl FnOnce(&mut Scope<T>) -> R) -> Option<R> {
    SCOPES.with(|s| {
        let mut s = s.borrow_mut();
        s.iter_mut()
            .rev()
            .find_map(|b| b.downcast_mut::<Scope<T>>())
            .map(f)
    })
}

/// Called by an op about to record a node over `inputs` (some requiring grad), while a
/// segment runs on this thread.
pub(super) fn intercept<T: Element>(inputs: &[&Tensor<T>]) -> Intercepted<T> {
    with_innermost(|scope: &mut Scope<T>| match scope {
        Scope::Discover { .. } => {
            for t in inputs {
                scope.note_use(t);
            }
            Intercepted::Suppress
        }
        Scope::Recompute { stand_ins, .. } => Intercepted::Edges(
            inputs
                .iter()
                .enumerate()
                .filter_map(|(index, t)| {
                    let node = t.node()?;
                    let node = match stand_ins.get_mut(&key(node)) {
                        Some(slot) => {
                            let s = slot.get_or_insert_with(|| t.detach().requires_grad());
                            Arc::clone(s.node().expect("a stand-in requires grad"))
                        }
                        _ => Arc::clone(node),
                    };
                    Some(InputEdge {
                        index: index as u32,
                        shape: t.inner.shape.clone(),
                        node,
                    })
                })
                .collect(),
        ),
    })
    .unwrap_or(Intercepted::No)
}

/// Called by an op that recorded `node` while a segment runs on this thread.
pub(super) fn created<T: Element>(node: &Arc<Node<T>>) {
    with_innermost(|scope: &mut Scope<T>| {
        if let Scope::Recompute { created, .. } = scope {
            created.insert(key(node));
        }
    });
}

/// While alive, no segment's scope is seen on this thread (restored on drop).
pub(super) struct Suspended(Option<Vec<Box<dyn Any>>>);

/// Hides the segments running on this thread from the ops of a graph node that the
/// backward executor runs on it meanwhile (a node of another pass, or of a pass nested in
/// the segment): their ops belong to that node, not to the segment.
pub(super) fn suspend() -> Suspended {
    if !active() {
        return Suspended(None);
    }
    ACTIVE.with(|a| a.set(false));
    Suspended(Some(SCOPES.with(|s| std::mem::take(&mut *s.borrow_mut()))))
}

impl Drop for Suspended {
    fn drop(&mut self) {
        if let Some(scopes) = self.0.take() {
            SCOPES.with(|s| *s.borrow_mut() = scopes);
            ACTIVE.with(|a| a.set(true));
        }
    }
}
