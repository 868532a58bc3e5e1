//! The seed graph (workload W5): t₃ = t₁ + t₂, t₄ = t₂·t₅, t₆ = t₃·t₄, t₇ = sin(t₆), L = t₇,
//! with t₁ = 2, t₂ = 3, t₅ = 0.5. Prints the gradients and, for each scheduler, the order in
//! which the backward pass ran the nodes: t₂'s two contributions (from `add` and from the
//! `mul` of t₂·t₅) both arrive before t₂'s leaf node runs.
//!
//! Run: `cargo run --release --example seed_graph`. Expected output (the parallel order may
//! differ between the two independent branches):
//!
//! ```text
//! dL/dt1 = 0.5200 (closed form cos(7.5)*1.5  = 0.5200)
//! dL/dt2 = 1.3865 (closed form cos(7.5)*4    = 1.3865)
//! dL/dt5 = 5.1995 (closed form cos(7.5)*15   = 5.1995)
//! dfs      : sin -> mul(t6) -> mul(t4) -> t5 -> add(t3) -> t2 -> t1
//! kahn     : sin -> mul(t6) -> add(t3) -> mul(t4) -> t1 -> t2 -> t5
//! parallel : sin -> mul(t6) -> add(t3) -> t1 -> mul(t4) -> t2 -> t5
//! ```

use backflow::{BackwardOptions, Scheduler, Tensor};
use std::sync::{Arc, Mutex};

fn main() -> backflow::Result<()> {
    let c = 7.5f32.cos();
    for scheduler in Scheduler::ALL {
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let watch = |t: &Tensor, name: &'static str| {
            let log = Arc::clone(&log);
            t.register_hook(move |_| {
                log.lock().unwrap().push(name.to_string());
                None
            });
        };
        let seed = backflow_app::workloads::seed_graph();
        let [t1, t2, t5, t3, t4, t6, l] = &seed.t;
        for (t, name) in [
            (l, "sin"),
            (t6, "mul(t6)"),
            (t3, "add(t3)"),
            (t4, "mul(t4)"),
            (t1, "t1"),
            (t2, "t2"),
            (t5, "t5"),
        ] {
            watch(t, name);
        }
        l.backward_with(&BackwardOptions::new().scheduler(scheduler).threads(2))?;
        if scheduler == Scheduler::Dfs {
            let g = |t: &Tensor| t.grad().expect("leaf has a gradient").item();
            println!(
                "dL/dt1 = {:.4} (closed form cos(7.5)*1.5  = {:.4})",
                g(t1),
                c * 1.5
            );
            println!(
                "dL/dt2 = {:.4} (closed form cos(7.5)*4    = {:.4})",
                g(t2),
                c * 4.0
            );
            println!(
                "dL/dt5 = {:.4} (closed form cos(7.5)*15   = {:.4})",
                g(t5),
                c * 15.0
            );
        }
        let order = log.lock().unwrap().join(" -> ");
        println!("{:<9}: {order}", scheduler.name());
    }
    Ok(())
}
