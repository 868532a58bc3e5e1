//! The process-wide executor: one lazily grown, bounded set of helper threads shared by
//! every backward pass of the process.
//!
//! A pass registers here while it runs. Helpers are never captive: an idle helper picks a
//! registered pass that has ready work and a free slot, joins it, runs its jobs while it finds
//! any, leaves, and looks for another pass or sleeps. The thread that called `backward` (the
//! pass's owner) does not depend on helpers at all: it runs its pass alone if no helper comes,
//! so every wake-up here is best-effort and only ever costs parallelism when missed.
//!
//! See `README.md` beside this file for the design and the argument that no pass deadlocks.

#[cfg(not(loom))]
use super::budget::Budget;
use crate::sync::{
    fence, global, spawn, Arc, AtomicBool, AtomicUsize, Condvar, JoinHandle, Mutex, Ordering,
};
use std::time::Duration;

/// Longest sleep of an idle helper before it looks at the passes again: a safety net under
/// the wake-up protocol (which is best-effort: the owner never needs a helper).
const IDLE_NAP: Duration = Duration::from_millis(50);

/// What the executor needs of a running pass.
pub(super) trait Pass: Send + Sync {
    /// Whether the pass has ready work and a free helper slot (a snapshot).
    fn wants_help(&self) -> bool;

    /// Joins the pass as a helper if a slot is free and the pass still runs, runs its jobs
    /// while any are found, and leaves. Never blocks on the pass.
    fn help(&self);

    /// [`help`](Pass::help), from a job that [`rayon_help`] queued on the caller's rayon pool.
    #[cfg(not(loom))]
    fn help_from_rayon(&self);

    /// Whether this is a split with chunks left that works for `budget` (a snapshot).
    /// Passes are not.
    #[cfg(not(loom))]
    fn offers_to(&self, budget: &Budget) -> bool {
        let _ = budget;
        false
    }

    /// Runs chunks left of a split for a thread that already holds a unit of its budget.
    #[cfg(not(loom))]
    fn help_within(&self) {}
}

/// A registered pass. (Boxed inside the `Arc` because loom's `Arc` cannot hold a `dyn`.)
pub(super) type PassRef = Arc<Box<dyn Pass>>;

/// The registered passes and the helpers' bookkeeping, under one lock.
struct State {
    /// Passes now running with room for helpers, by registration id.
    passes: Vec<(usize, PassRef)>,
    next_id: usize,
    /// Where the next scan starts, so that no pass is always looked at last.
    cursor: usize,
    /// Set once by [`shutdown`] (loom models only): helpers exit.
    shutdown: bool,
    /// The helpers' handles, for [`shutdown`] to join (kept under loom only).
    handles: Vec<JoinHandle>,
}

impl State {
    /// A pass that wants help, starting the scan at the cursor.
    fn pick(&mut self) -> Option<PassRef> {
        let n = self.passes.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if self.passes[i].1.wants_help() {
                self.cursor = (i + 1) % n;
                return Some(Arc::clone(&self.passes[i].1));
            }
        }
        None
    }
}

/// The one executor of the process (of the model execution, under loom).
struct Executor {
    state: Mutex<State>,
    /// Idle helpers sleep here.
    wake: Condvar,
    /// Helpers between announcing sleep and waking; read by pushers after a `SeqCst` fence.
    idle: AtomicUsize,
    /// Helpers polling for work a short while before they sleep (see `spin_for_work`): a
    /// pusher that sees one needs to wake nobody. Read by pushers after their fence.
    spinning: AtomicUsize,
    /// The most helpers that poll at once: one less than the cores, so that with more
    /// threads than cores (`max_threads()` is at least 8) pollers do not take the cores of
    /// threads with work. The others sleep at once.
    poll_cap: usize,
    /// Set by a pusher that left its work to the polling helpers: they look at the passes
    /// (under the lock) only then, so that polling reads one shared flag, not the lock.
    wanted: AtomicBool,
    /// Set when an idle helper has been notified and has not woken yet: further pushes then
    /// spare their wake-ups (that helper scans every pass when it wakes).
    waking: AtomicBool,
    /// Helper threads started (or being started), at most [`helper_cap`].
    spawned: AtomicUsize,
    /// Set when the OS refused a thread: passes then run with the helpers there are.
    spawn_failed: AtomicBool,
    /// Negative control of the loom models: owners wait without running jobs.
    #[cfg(loom)]
    owner_helps: AtomicBool,
    /// Negative control of the split model: callers return without waiting for chunks.
    #[cfg(loom)]
    split_waits: AtomicBool,
    /// Negative control of the polling model: a polling helper stops counting as polling
    /// only after its last look before sleeping.
    #[cfg(loom)]
    poll_decrement_late: AtomicBool,
}

global! {
    /// The executor, created on first use.
    fn executor() -> Executor = Executor {
        state: Mutex::new(State {
            passes: Vec::new(),
            next_id: 0,
            cursor: 0,
            shutdown: false,
            handles: Vec::new(),
        }),
        wake: Condvar::new(),
        idle: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        wanted: AtomicBool::new(false),
        poll_cap: if cfg!(loom) {
            2
        } else {
            super::default_threads().saturating_sub(1)
        },
        waking: AtomicBool::new(false),
        spawned: AtomicUsize::new(0),
        spawn_failed: AtomicBool::new(false),
        #[cfg(loom)]
        owner_helps: AtomicBool::new(true),
        #[cfg(loom)]
        split_waits: AtomicBool::new(true),
        #[cfg(loom)]
        poll_decrement_late: AtomicBool::new(false),
    };
}

/// The most threads one pass may use, the caller included: `threads(n)` is clamped to it.
/// It is `max(available cores, 8)`, at most 256; helpers for the whole process number at
/// most one less. Under loom it is 3, so models stay small.
pub fn max_threads() -> usize {
    #[cfg(not(loom))]
    {
        super::default_threads().clamp(8, 256)
    }
    #[cfg(loom)]
    {
        3
    }
}

/// The most helper threads the process starts: every pass's owner is a thread of its own.
fn helper_cap() -> usize {
    max_threads() - 1
}

/// Adds a running pass that may take helpers; returns the id to [`unregister`] it with.
pub(super) fn register(pass: PassRef) -> usize {
    let mut state = executor().state.lock();
    let id = state.next_id;
    state.next_id += 1;
    state.passes.push((id, pass));
    id
}

/// Removes a pass once it has ended.
pub(super) fn unregister(id: usize) {
    let removed = {
        let mut state = executor().state.lock();
        let i = state.passes.iter().position(|(p, _)| *p == id);
        i.map(|i| state.passes.swap_remove(i))
    };
    // The pass (and the task it holds) drops here, outside the lock.
    drop(removed);
}

/// A pass has work and a free slot: wakes an idle helper, or starts one while fewer than
/// [`helper_cap`] exist. The caller has pushed the work, then issued a `SeqCst` fence.
/// Returns whether a sleeping helper is on its way (woken now, or by an earlier call).
pub(super) fn want_helper() -> bool {
    let exec = executor();
    // SeqCst: pairs with the fence in `helper_loop` (Dekker): a polling helper either finds
    // the caller's work, or announces itself idle (before it stops counting as polling) and
    // then sees it on its second look.
    if exec.spinning.load(Ordering::SeqCst) > 0 {
        // Relaxed: a hint; a poller that misses it still looks again before it sleeps.
        // (Loaded first: the flag's line stays shared while it is set.)
        if !exec.wanted.load(Ordering::Relaxed) {
            exec.wanted.store(true, Ordering::Relaxed);
        }
        return true;
    }
    // SeqCst: pairs with the fence in `helper_loop` (Dekker): either that helper's second look
    // sees the caller's work, or the caller sees it idle here and wakes it.
    if exec.idle.load(Ordering::SeqCst) > 0 {
        // Relaxed: a hint (see `waking`); a helper on its way will look at every pass.
        if exec.waking.load(Ordering::Relaxed) {
            return true;
        }
        let _state = exec.state.lock();
        // Under the lock, `idle` counts only helpers inside `wait_for`: one of them wakes,
        // and clears `waking` once it holds the lock again.
        // Relaxed: the lock orders these with the helpers' updates.
        if exec.idle.load(Ordering::Relaxed) == 0 {
            return false;
        }
        if !exec.waking.swap(true, Ordering::Relaxed) {
            exec.wake.notify_one();
        }
        return true;
    }
    // Relaxed: the counter only bounds how many threads start; no data is published by it.
    let n = exec.spawned.load(Ordering::Relaxed);
    if n >= helper_cap() || exec.spawn_failed.load(Ordering::Relaxed) {
        return false;
    }
    // Relaxed: as above; the CAS only keeps concurrent starters within the cap.
    if exec
        .spawned
        .compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    match spawn(format!("backflow-helper-{}", n + 1), helper_loop) {
        Ok(handle) => {
            if cfg!(loom) {
                exec.state.lock().handles.push(handle);
            }
        }
        Err(_) => {
            // Degrade: the passes run with the helpers that exist (their owners alone at
            // worst); no panic, and no retry on every push.
            // Relaxed: a hint that stops further attempts.
            exec.spawn_failed.store(true, Ordering::Relaxed);
            exec.spawned.fetch_sub(1, Ordering::Relaxed);
        }
    }
    false
}

/// Queues on the calling thread's rayon pool a job that helps pass `id` once (if it still
/// runs): when `backward` is called from a rayon worker (`backflow train`, a user's pool),
/// that pool's idle threads help too, instead of a second set of threads competing for the
/// cores. Such a job never blocks on the pass, so a rayon wait that steals it gets it back
/// after at most the jobs it finds; that is what makes it safe, where a captive worker loop
/// was not.
#[cfg(not(loom))]
pub(super) fn rayon_help(id: usize) {
    rayon::spawn(move || {
        let pass = {
            let state = executor().state.lock();
            state
                .passes
                .iter()
                .find(|(p, _)| *p == id)
                .map(|(_, pass)| Arc::clone(pass))
        };
        if let Some(pass) = pass {
            pass.help_from_rayon();
        }
    });
}

/// Runs chunks of a split offered within `budget`, for a thread that holds a unit of it and
/// has nothing else to do (a pass's owner whose helper runs a large kernel); whether it
/// found one.
#[cfg(not(loom))]
pub(super) fn help_within(budget: &Budget) -> bool {
    let split = {
        let state = executor().state.lock();
        state
            .passes
            .iter()
            .find(|(_, p)| p.offers_to(budget))
            .map(|(_, p)| Arc::clone(p))
    };
    match split {
        Some(split) => {
            split.help_within();
            true
        }
        None => false,
    }
}

/// A helper's life: help whichever pass wants it, else sleep until woken.
fn helper_loop() {
    let exec = executor();
    let mut state = exec.state.lock();
    let mut helped = false;
    loop {
        if state.shutdown {
            return;
        }
        if let Some(pass) = state.pick() {
            drop(state);
            pass.help();
            drop(pass);
            helped = true;
            state = exec.state.lock();
            continue;
        }
        // Work that comes soon after a helper's last (the next kernel's split, the next
        // ready node) finds it polling instead of asleep.
        let mut polled = std::mem::take(&mut helped);
        // SeqCst: from here until it counts as idle, a pusher that sees it leaves the work
        // to it (`want_helper`). Past the cap it stops counting at once, before it counts as
        // idle and before its fence, as a poller does (so a pusher that saw the count still
        // has its work found by the last look below).
        if polled && exec.spinning.fetch_add(1, Ordering::SeqCst) >= exec.poll_cap {
            exec.spinning.fetch_sub(1, Ordering::SeqCst);
            polled = false;
        }
        if polled {
            drop(state);
            let found = spin_for_work(exec);
            if let Some(pass) = found {
                exec.spinning.fetch_sub(1, Ordering::SeqCst);
                pass.help();
                drop(pass);
                helped = true;
                state = exec.state.lock();
                continue;
            }
            state = exec.state.lock();
        }
        // SeqCst: announce, then fence, then look again (pairs with the fence a pusher issues
        // before `want_helper` reads `spinning` and `idle`).
        exec.idle.fetch_add(1, Ordering::SeqCst);
        // SeqCst: it stops counting as polling only once it counts as idle, and before the
        // fence: a pusher whose read of `spinning` comes after the fence sees it idle and
        // wakes it; one whose read comes before has pushed work this look finds.
        let late = polled && poll_decrement_late();
        if polled && !late {
            exec.spinning.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        let idle = !state.shutdown && !state.passes.iter().any(|(_, p)| p.wants_help());
        if late {
            // The negative control's order: too late, a pusher may have left its work to
            // this helper after its last look.
            exec.spinning.fetch_sub(1, Ordering::SeqCst);
        }
        if idle {
            state = exec.wake.wait_for(state, IDLE_NAP);
            // Relaxed: written under the lock, like the pushers' swap.
            exec.waking.store(false, Ordering::Relaxed);
        }
        // SeqCst: as for the increment.
        exec.idle.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a helper that has just run out of work polls for more before it sleeps.
#[cfg(not(loom))]
const SPIN: Duration = Duration::from_micros(100);

/// Polls the passes for one that wants help, for [`SPIN`]; the pass, if one came.
#[cfg(not(loom))]
fn spin_for_work(exec: &Executor) -> Option<PassRef> {
    let until = std::time::Instant::now() + SPIN;
    while std::time::Instant::now() < until {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        // Relaxed: the passes are then read under the lock.
        if exec.wanted.load(Ordering::Relaxed) && exec.wanted.swap(false, Ordering::Relaxed) {
            if let Some(pass) = exec.state.lock().pick() {
                return Some(pass);
            }
        }
    }
    None
}

/// Under loom: one look, so the models check the polling path without spinning.
#[cfg(loom)]
fn spin_for_work(exec: &Executor) -> Option<PassRef> {
    exec.state.lock().pick()
}

/// Whether owners run their pass's jobs while they wait (always, except in the loom models'
/// negative controls).
pub(super) fn owner_helps() -> bool {
    #[cfg(loom)]
    {
        // Relaxed: set before the model's passes start, on the same thread.
        executor().owner_helps.load(Ordering::Relaxed)
    }
    #[cfg(not(loom))]
    {
        true
    }
}

/// Negative control of the loom models: with `false`, a pass's owner only seeds it and then
/// waits without running any of its jobs (the old captive design's failure). Call at the
/// start of each model execution.
#[cfg(loom)]
pub fn set_owner_helps(helps: bool) {
    // Relaxed: read later on this thread, or on threads it starts.
    executor().owner_helps.store(helps, Ordering::Relaxed);
}

/// Whether a split's caller waits for the chunks other threads run (always, except in the
/// split model's negative control).
pub(super) fn split_waits() -> bool {
    #[cfg(loom)]
    {
        // Relaxed: set before the model's split starts, on the same thread.
        executor().split_waits.load(Ordering::Relaxed)
    }
    #[cfg(not(loom))]
    {
        true
    }
}

/// Negative control of the split model: with `false`, a split's caller returns once every
/// chunk is claimed, without waiting for those still running elsewhere. Call at the start
/// of each model execution.
#[cfg(loom)]
pub fn set_split_waits(waits: bool) {
    // Relaxed: read later on this thread.
    executor().split_waits.store(waits, Ordering::Relaxed);
}

/// Whether a polling helper stops counting as polling too late (never, except in the
/// polling model's negative control).
fn poll_decrement_late() -> bool {
    #[cfg(loom)]
    {
        // Relaxed: set before the model's passes start, on the same thread.
        executor().poll_decrement_late.load(Ordering::Relaxed)
    }
    #[cfg(not(loom))]
    {
        false
    }
}

/// Negative control of the polling model: with `true`, a helper that polled for work stops
/// counting as polling only after its last look at the passes before it sleeps, so a pusher
/// in between leaves its work to a helper that is about to sleep. Call at the start of each
/// model execution.
#[cfg(loom)]
pub fn set_poll_decrement_late(late: bool) {
    // Relaxed: read later by helpers the model's passes start.
    executor()
        .poll_decrement_late
        .store(late, Ordering::Relaxed);
}

/// Stops and joins every helper (loom models only: loom requires every thread to finish
/// before an execution ends). Call at the end of each model execution.
#[cfg(loom)]
pub fn shutdown() {
    let exec = executor();
    let handles = {
        let mut state = exec.state.lock();
        state.shutdown = true;
        exec.wake.notify_all();
        std::mem::take(&mut state.handles)
    };
    for handle in handles {
        handle.join().expect("loom helper panicked");
    }
}
