//! loom model of the whole parallel executor on a diamond, `0 -> {1, 2} -> 3`: the real
//! `execute` with `Scheduler::Parallel`, its ready queue, workers and completion, on the
//! caller plus one or two helper threads. Every node must run exactly once, and node 3 must
//! receive the canonical fold of both paths under every interleaving, as `Kahn` computes it.
//! Each node also writes a plain (loom-tracked) cell that its successors read when they run,
//! so a hand-off that does not publish a node's writes to its successors is caught.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check_exec, parallel, Expr, Graph, DIAMOND};

use backflow_engine::exec::{Accumulation, ExecOptions, Scheduler};
use loom::cell::UnsafeCell;

/// Per original id: set by the node when it runs, read by its successors.
struct Written([UnsafeCell<bool>; DIAMOND.len()]);

// SAFETY: the cells are accessed through loom's `UnsafeCell`, which reports any pair of
// accesses not ordered by happens-before; the executor's hand-offs must order them.
unsafe impl Sync for Written {}

/// Runs the diamond with seed `s`, node `n` sending `d{n}(g)` to each successor after
/// checking that its predecessors' writes are visible; returns what each node (by original
/// id) ran with.
fn run(opts: &ExecOptions) -> Vec<(u32, Option<Expr>)> {
    let written = Written(std::array::from_fn(|_| UnsafeCell::new(false)));
    let (plan, graph) = Graph::new(&DIAMOND, move |id, grad: &Option<Expr>| {
        // Captures the whole `Written` (which is `Sync`), not just its array.
        let written = &written;
        for (p, succ) in DIAMOND.iter().enumerate() {
            if succ.contains(&id) {
                // SAFETY: node p wrote before its contribution was delivered; loom checks it.
                let wrote = written.0[p].with(|w| unsafe { *w });
                assert!(wrote, "n{id} runs before its predecessor n{p}");
            }
        }
        written.0[id as usize].with_mut(|w| {
            // SAFETY: only node `id` writes its cell, once; loom checks the readers.
            unsafe { *w = true }
        });
        Ok(grad.as_ref().map(|g| Expr(format!("d{id}({})", g.0))))
    });
    Graph::execute(&graph, plan, Expr("s".to_string()), opts).expect("no node fails")
}

/// The model: Parallel on `threads` workers agrees exactly with sequential Kahn.
fn diamond(threads: usize, accumulation: Accumulation) {
    check_exec(move || {
        let got = run(&parallel(threads, accumulation));
        for (id, (runs, _)) in got.iter().enumerate() {
            assert_eq!(*runs, 1, "node {id} ran {runs} times");
        }
        let grads: Vec<_> = got.into_iter().map(|(_, g)| g.map(|g| g.0)).collect();
        let both = match accumulation {
            Accumulation::Deterministic => ["(d1(d0(s))+d2(d0(s)))"].as_slice(),
            // Fast adds in arrival order: either order is right, nothing else is.
            Accumulation::Fast => ["(d1(d0(s))+d2(d0(s)))", "(d2(d0(s))+d1(d0(s)))"].as_slice(),
        };
        assert_eq!(
            grads[..3],
            [Some("s".into()), Some("d0(s)".into()), Some("d0(s)".into())]
        );
        assert!(
            both.contains(&grads[3].as_deref().unwrap_or("")),
            "node 3 got {:?}",
            grads[3]
        );
        if accumulation == Accumulation::Deterministic {
            let kahn = ExecOptions {
                scheduler: Scheduler::Kahn,
                threads: 1,
                accumulation,
            };
            let reference: Vec<_> = run(&kahn)
                .into_iter()
                .map(|(_, g)| g.map(|g| g.0))
                .collect();
            assert_eq!(grads, reference, "Parallel and Kahn disagree");
        }
    });
}

#[test]
fn diamond_on_two_threads() {
    diamond(2, Accumulation::Deterministic);
}

#[test]
fn diamond_on_three_threads() {
    diamond(3, Accumulation::Deterministic);
}

#[test]
fn diamond_on_three_threads_fast() {
    diamond(3, Accumulation::Fast);
}
