//! loom model of two independent passes sharing the executor's helpers. Pass A (the diamond
//! `0 -> {1, 2} -> 3` on three threads, owned by the main thread) has two long branches:
//! nodes 1 and 2 block until pass B has finished. Pass B (the chain `0 -> 1` on two
//! threads) is owned by a second user thread, and starts once both of A's branches run (so
//! that two of A's threads are busy in them, whoever they are). With the real `execute` and
//! `Scheduler::Parallel`, under every interleaving B finishes while A's branches wait, then
//! A finishes: a caller never waits for another caller's branch.
//!
//! The negative control makes every pass's owner wait without running its jobs: then both
//! helpers are inside A's blocked branches and nobody runs B, and loom must report the
//! deadlock. A loom deadlock aborts its process, so the control runs the model in a child
//! process and checks that it fails for that reason.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{
    assert_child_deadlocks, chain_forwarded, check_exec, diamond_forwarded, parallel, Count, Graph,
    CHAIN, DIAMOND,
};

use backflow_engine::exec::{set_owner_helps, Accumulation};
use backflow_engine::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A counter that threads wait on.
#[derive(Default)]
struct Signal {
    count: Mutex<u32>,
    wake: Condvar,
}

impl Signal {
    fn add(&self) {
        *self.count.lock() += 1;
        self.wake.notify_all();
    }

    fn wait_for(&self, n: u32) {
        let mut count = self.count.lock();
        while *count < n {
            count = self.wake.wait_for(count, Duration::from_secs(1));
        }
    }
}

/// How A's long branches and B meet: B starts once both branches run, and the branches end
/// once B has returned.
#[derive(Default)]
struct Done {
    /// A's branches that have started.
    entered: Signal,
    /// 1 once B has returned.
    done: Signal,
}

/// The model: A on the main thread, B on a second user thread.
fn independent(owner_helps: bool) {
    check_exec(move || {
        set_owner_helps(owner_helps);
        let done = Arc::new(Done::default());
        let b = {
            let done = Arc::clone(&done);
            loom::thread::spawn(move || {
                done.entered.wait_for(2);
                let (plan, graph) = Graph::forwarding(&CHAIN);
                let seen = Graph::execute(
                    &graph,
                    plan,
                    Count(1),
                    &parallel(2, Accumulation::Deterministic),
                )
                .expect("no node fails");
                done.done.add();
                seen
            })
        };
        // Nodes 1 and 2 of A wait for B before forwarding.
        let (plan, graph) = Graph::new(&DIAMOND, move |id, grad: &Option<Count>| {
            if matches!(id, 1 | 2) {
                done.entered.add();
                done.done.wait_for(1);
            }
            Ok(grad.clone())
        });
        let a = Graph::execute(
            &graph,
            plan,
            Count(1),
            &parallel(3, Accumulation::Deterministic),
        )
        .expect("no node fails");
        let b = b.join().expect("B's owner");
        assert_eq!(b, chain_forwarded());
        assert_eq!(a, diamond_forwarded());
    });
}

#[test]
fn independent_passes_both_finish() {
    independent(true);
}

#[test]
#[ignore = "negative control: run in a child process by owners_that_do_not_help_deadlock"]
fn owners_that_do_not_help_child() {
    independent(false);
}

#[test]
fn owners_that_do_not_help_deadlock() {
    assert_child_deadlocks("owners_that_do_not_help_child");
}
