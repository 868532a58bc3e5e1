//! loom model of a nested pass: on the diamond `0 -> {1, 2} -> 3`, nodes 1 and 2 each run a
//! whole backward pass of their own (the chain `0 -> 1`, as a hook or a checkpoint does)
//! with the real `execute` and `Scheduler::Parallel` (three threads outside, two inside), on
//! whichever thread runs them: the
//! caller or a helper of the shared executor. Under every interleaving both inner passes and
//! the outer one finish, every node runs once, and node 3 gets both contributions.
//!
//! The negative control makes every pass's owner wait without running its jobs (the old
//! captive design): a helper that owns an inner pass then waits for a helper that never
//! comes, and loom must report the deadlock. A loom deadlock aborts its process, so the
//! control runs the model in a child process and checks that it fails for that reason.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{
    assert_child_deadlocks, chain_forwarded, check_exec, diamond_forwarded, parallel, Count, Graph,
    CHAIN, DIAMOND,
};

use backflow_engine::exec::{set_owner_helps, Accumulation};

/// The model: the outer diamond, with an inner pass in nodes 1 and 2.
fn nested(owner_helps: bool) {
    check_exec(move || {
        set_owner_helps(owner_helps);
        let (plan, outer) = Graph::new(&DIAMOND, |id, grad: &Option<Count>| {
            if matches!(id, 1 | 2) {
                let (plan, inner) = Graph::forwarding(&CHAIN);
                let seen = Graph::execute(
                    &inner,
                    plan,
                    Count(1),
                    &parallel(2, Accumulation::Deterministic),
                )
                .map_err(|e| e.to_string())?;
                assert_eq!(seen, chain_forwarded());
            }
            Ok(grad.clone())
        });
        let seen = Graph::execute(
            &outer,
            plan,
            Count(1),
            &parallel(3, Accumulation::Deterministic),
        )
        .expect("no node fails");
        assert_eq!(seen, diamond_forwarded());
    });
}

#[test]
fn a_nested_pass_in_an_outer_pass_finishes() {
    nested(true);
}

#[test]
#[ignore = "negative control: run in a child process by owners_that_do_not_help_deadlock"]
fn owners_that_do_not_help_child() {
    nested(false);
}

#[test]
fn owners_that_do_not_help_deadlock() {
    assert_child_deadlocks("owners_that_do_not_help_child");
}
