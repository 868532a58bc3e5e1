//! loom model of a helper that has just run out of work and polls for more before it
//! sleeps, when the next pass arrives. The owner runs two passes one after the other (the
//! chain `0 -> 1` on two threads) and does not run their jobs itself (the switch the other
//! models' negative controls use), so each pass ends only if the helper joins it: the
//! second pass's wake-up must reach the helper whether it is polling, between polling and
//! sleeping, or asleep. Under every interleaving both passes finish.
//!
//! The negative control makes the helper stop counting as polling only after its last look
//! at the passes: a pusher in between then leaves its work to a helper about to sleep, and
//! loom must report the deadlock (in a child process, as for the other controls).
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{
    assert_child_deadlocks, chain_forwarded, check_exec, parallel, Count, Graph, CHAIN,
};

use backflow_engine::exec::{set_owner_helps, set_poll_decrement_late, Accumulation};

/// The model: two passes in a row, each run by the helper alone.
fn two_passes(decrement_late: bool) {
    check_exec(move || {
        set_owner_helps(false);
        set_poll_decrement_late(decrement_late);
        for _ in 0..2 {
            let (plan, graph) = Graph::forwarding(&CHAIN);
            let seen = Graph::execute(
                &graph,
                plan,
                Count(1),
                &parallel(2, Accumulation::Deterministic),
            )
            .expect("no node fails");
            assert_eq!(seen, chain_forwarded());
        }
    });
}

#[test]
fn a_polling_helper_takes_the_next_pass() {
    two_passes(false);
}

#[test]
#[ignore = "negative control: run in a child process by polling_too_late_deadlocks"]
fn polling_too_late_child() {
    two_passes(true);
}

#[test]
fn polling_too_late_deadlocks() {
    assert_child_deadlocks("polling_too_late_child");
}
