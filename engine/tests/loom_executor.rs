//! loom model of the whole parallel executor on a diamond, `0 -> {1, 2} -> 3`: the real
//! `execute` with `Scheduler::Parallel`, its ready queue, workers and completion, on the
//! caller plus one or two helper threads. Every node must run exactly once, and node 3 must
//! receive the canonical fold of both paths under every interleaving, as `Kahn` computes it.
//! Each node also writes a plain (loom-tracked) cell that its successors read when they run,
//! so a hand-off that does not publish a node's writes to its successors is caught.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

mod common;
use common::{check_exec, Expr, DIAMOND};

use backflow_engine::exec::{execute, Accumulation, ExecOptions, Plan, Scheduler, Task};
use backflow_engine::sync::{Arc, Mutex};
use loom::cell::UnsafeCell;

/// Node `n` sends `d{n}(g)` to each successor and records what it received.
struct Diamond {
    /// Original id of each dense index.
    ids: Vec<u32>,
    /// Per original id: how many times it ran, and the gradient it received.
    seen: Mutex<Vec<(u32, Option<Expr>)>>,
    /// Per original id: set by the node when it runs, read by its successors.
    written: [UnsafeCell<bool>; DIAMOND.len()],
}

// SAFETY: `written` is accessed through loom's `UnsafeCell`, which reports any pair of
// accesses not ordered by happens-before; the executor's hand-offs must order them.
unsafe impl Sync for Diamond {}

impl Task for Diamond {
    type Grad = Expr;

    fn run(
        &self,
        node: u32,
        grad: Option<Expr>,
        out: &mut Vec<Option<Expr>>,
    ) -> Result<(), String> {
        let id = self.ids[node as usize];
        for (p, succ) in DIAMOND.iter().enumerate() {
            if succ.contains(&id) {
                // SAFETY: node p wrote before its contribution was delivered; loom checks it.
                let wrote = self.written[p].with(|w| unsafe { *w });
                assert!(wrote, "n{id} runs before its predecessor n{p}");
            }
        }
        self.written[id as usize].with_mut(|w| {
            // SAFETY: only node `id` writes its cell, once; loom checks the readers.
            unsafe { *w = true }
        });
        for _ in DIAMOND[id as usize] {
            out.push(grad.as_ref().map(|g| Expr(format!("d{id}({})", g.0))));
        }
        let mut seen = self.seen.lock();
        seen[id as usize].0 += 1;
        seen[id as usize].1 = grad;
        Ok(())
    }

    fn describe(&self, node: u32) -> String {
        format!("n{}", self.ids[node as usize])
    }
}

/// The diamond's plan from root 0, and the original id of each dense index.
fn plan() -> (Plan, Vec<u32>) {
    Plan::build(
        &[0u32],
        |&n| n,
        |&n, out| out.extend_from_slice(DIAMOND[n as usize]),
        None,
    )
}

/// Runs the diamond with seed `s`; returns what each node (by original id) ran with.
fn run(plan: &Plan, ids: &[u32], opts: &ExecOptions) -> Vec<(u32, Option<Expr>)> {
    let task = Arc::new(Diamond {
        ids: ids.to_vec(),
        seen: Mutex::new(vec![(0, None); DIAMOND.len()]),
        written: std::array::from_fn(|_| UnsafeCell::new(false)),
    });
    let seed = Some(Expr("s".to_string()));
    execute(Arc::new(plan.clone()), Arc::clone(&task), vec![seed], opts).expect("no node fails");
    let seen = task.seen.lock().clone();
    seen
}

/// The model: Parallel on `threads` workers agrees exactly with sequential Kahn.
fn diamond(threads: usize, accumulation: Accumulation) {
    let (plan, ids) = plan();
    check_exec(move || {
        let parallel = ExecOptions {
            scheduler: Scheduler::Parallel,
            threads,
            accumulation,
        };
        let got = run(&plan, &ids, &parallel);
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
            let reference: Vec<_> = run(&plan, &ids, &kahn)
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
