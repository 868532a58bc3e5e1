//! Fault injection over tensor graphs: the same recipe with fault ops at random nodes.
//!
//! A fault op is an identity whose backward panics or returns `Err` (see
//! [`super::build`]). Under every configuration the faulty graph must return an `Err`
//! that names the fault op, within the watchdog's deadline; right after it, the clean
//! graph must still give the reference gradients (the engine keeps working: no poisoned
//! pool, no stale state).

use super::build::{FAULT_OP, INJECTED};
use super::oracle::{compare, fast_tolerance, run_once, LeafGrads, RunConfig};
use super::recipe::Recipe;
use super::watchdog::Watch;
use backflow::Accumulation;
use backflow_kernels::Element;
use std::sync::Once;

/// What a fault-injection check found.
#[derive(Debug, Default)]
pub struct FaultCheck {
    /// Faulty runs made (each one injected fault run).
    pub injected: u64,
    /// Faulty runs that returned an `Err` naming the fault op.
    pub caught: u64,
    /// `(configuration index, description)` of each failure.
    pub failures: Vec<(usize, String)>,
}

/// Runs `recipe` with `count` faults (chosen by `seed`) under every configuration, each
/// followed by a clean run compared with `reference`.
pub fn check_faults<T: Element>(
    recipe: &Recipe,
    seed: u64,
    count: usize,
    configs: &[RunConfig],
    reference: &LeafGrads,
    watch: &Watch,
) -> FaultCheck {
    quiet_injected_panics();
    let eps = if T::NAME == "f64" {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    };
    let label = format!("seed {seed} tensor graph ({})", T::NAME);
    let mut check = FaultCheck::default();
    let faulty = recipe.clone().with_faults(seed, count);
    let (bad, good) = match (faulty.build::<T>(), recipe.build::<T>()) {
        (Ok(b), Ok(g)) => (b, g),
        (Err(e), _) | (_, Err(e)) => {
            check
                .failures
                .push((usize::MAX, format!("build failed: {e}")));
            return check;
        }
    };
    let tol = fast_tolerance(eps, recipe.depth(), recipe.max_fan_in());
    for (i, cfg) in configs.iter().enumerate() {
        check.injected += 1;
        let got = watch.run(
            || format!("{label} faults {:?} {cfg}", faulty.faults),
            None,
            || run_once(&bad, cfg, i % 2 == 1, true),
        );
        match got {
            Err(e) if e.to_string().contains(FAULT_OP) && e.to_string().contains(INJECTED) => {
                check.caught += 1
            }
            Err(e) => check
                .failures
                .push((i, format!("fault run failed without naming the fault: {e}"))),
            Ok(_) => check
                .failures
                .push((i, format!("faults {:?} returned Ok", faulty.faults))),
        }
        let after = watch.run(
            || format!("{label} after faults {cfg}"),
            None,
            || run_once(&good, cfg, i % 2 == 0, true),
        );
        let tol = (cfg.accumulation == Accumulation::Fast).then_some(tol);
        let problem = match after {
            Err(e) => Some(format!("clean run after a fault failed: {e}")),
            Ok(got) => {
                compare(&got, reference, tol).map(|p| format!("clean run after a fault: {p}"))
            }
        };
        if let Some(p) = problem {
            check.failures.push((i, p));
        }
    }
    check
}

/// Installs (once) a panic hook that keeps injected panics (payloads starting with
/// [`INJECTED`]) off stderr and passes every
/// other panic to the previous hook.
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !text.starts_with(INJECTED) {
                previous(info);
            }
        }));
    });
}
